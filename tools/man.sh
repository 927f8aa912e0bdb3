#!/usr/bin/env bash
# Writes the man pages' scdoc sources into OUTDIR from one source, the built binary: the command
# table (`stepop completion --list commands`), each command's --help text and its option table
# (`stepop completion --list options CMD`); the (5) pages from docs/manifest.md and docs/flavors.md
# by tools/md2scd.py. The Makefile runs scdoc on each. Usage: tools/man.sh STEPOP OUTDIR
set -euo pipefail
stepop=$1 out=$2
mkdir -p "$out"

# scdoc's inline markup (*bold*, _underline_, \ escapes) made literal.
esc() { sed -e 's/\\/\\\\/g' -e 's/\*/\\*/g' -e 's/_/\\_/g'; }

# A literal (preformatted) block: the help text exactly as the command prints it.
literal() { echo '```'; cat; echo '```'; }

see_also() {
    echo
    echo "# SEE ALSO"
    echo
    echo "$1*stepop.json*(5), *stepop-manifest*(5); README.md and docs/ in the source tree."
}

commands=$("$stepop" completion --list commands)

{
    echo "stepop(1)"
    echo
    echo "# NAME"
    echo
    echo "stepop - launch, run and follow ML pipeline steps on local and cloud platforms"
    echo
    echo "# SYNOPSIS"
    echo
    echo "*stepop* _command_ [_options_]"
    echo
    echo "*stepop-submit* [_options_] (the same as *stepop submit*)"
    echo
    echo "# DESCRIPTION"
    echo
    "$stepop" help | literal
    echo
    echo "# COMMANDS"
    while IFS=$'\t' read -r name summary; do
        [ "$name" = help ] && continue
        echo
        echo "*stepop-$name*(1)"
        echo "	$(printf '%s' "$summary" | esc)"
    done <<<"$commands"
    echo
    echo "# EXIT STATUS"
    echo
    echo "0 on success, 2 for a usage error, 3 when something named does not exist; each command's"
    echo "page lists its own codes. *submit* exits with the step's own code."
    see_also ""
} >"$out/stepop.1.scd"

while IFS=$'\t' read -r name summary; do
    [ "$name" = help ] && continue
    {
        echo "stepop-$name(1)"
        echo
        echo "# NAME"
        echo
        echo "stepop-$name - $(printf '%s' "$summary" | esc)"
        echo
        echo "# DESCRIPTION"
        echo
        "$stepop" "$name" --help | literal
        echo
        echo "# OPTIONS"
        echo
        while IFS=$'\t' read -r long short; do
            [ -n "$long" ] || continue
            line=""
            [ -n "$short" ] && line="*$short*, "
            case $long in
            *=) line="$line*${long%=}* _value_" ;;
            *) line="$line*$long*" ;;
            esac
            echo "$line ++"
        done < <("$stepop" completion --list options "$name")
        echo "*-h*, *--help*"
        see_also "*stepop*(1), "
    } >"$out/stepop-$name.1.scd"
done <<<"$commands"

# The (5) pages are the docs' own text (docs/manifest.md, docs/flavors.md), converted.
docs=$(dirname "$0")/../docs
python3 "$(dirname "$0")/md2scd.py" stepop-manifest 5 "the step manifest (manifest.json, stepop/v1)" \
    "$docs/manifest.md" >"$out/stepop-manifest.5.scd"
python3 "$(dirname "$0")/md2scd.py" stepop.json 5 "the configuration: the store and the operators" \
    "$docs/flavors.md" "Configuration and operators" >"$out/stepop.json.5.scd"
