#!/bin/sh
# static-check.sh BINARY: fails unless BINARY needs no shared library but glibc's, then prints its
# glibc floor: the highest GLIBC_x.y symbol version it needs, and which symbols need it. The
# binary runs on any system whose glibc is at least that version.
set -eu
bin=$1
needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in $needed; do
    case $lib in
    libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | ld-linux*.so.*) ;;
    *) echo "static-check.sh: $bin needs $lib, which is not part of glibc" >&2; exit 1 ;;
    esac
done
echo "  NEEDED  "$needed
floor=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -uV | tail -n1)
syms=$(objdump -T "$bin" | awk -v v="$floor" '$0 ~ "[( ]" v "[) ]" { print $NF }' | sort -u)
n=$(echo "$syms" | wc -l)
some=$(echo "$syms" | head -n 4 | tr '\n' ' ')
[ "$n" -gt 4 ] && some="$some... $n symbols"
echo "  GLIBC   $bin needs glibc >= ${floor#GLIBC_} ($floor: ${some% })"
