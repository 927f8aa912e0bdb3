#!/usr/bin/env bash
# TLS: verification is on by default; a CA bundle (STEPOP_CA_BUNDLE or SSL_CERT_FILE) makes a
# private CA work; only STEPOP_TLS_INSECURE=1 turns verification off, and it says so.
. "$(dirname "$0")/../lib.sh"
command -v nginx >/dev/null || skip_all "nginx is not installed (make deps)"
command -v openssl >/dev/null || skip_all "openssl is not installed (make deps)"
start_nginx tls || { not_ok "nginx with TLS starts"; done_testing; }
head -c 300000 /dev/urandom >"$T/obj"
u=$NGINX_URL/obj

expect_rc 1 "a self-signed server is refused by default" "$STEPOP" artifact put "$T/obj" "$u"
err_has "TLS verification failed" "the message says TLS verification failed"
err_has "STEPOP_CA_BUNDLE" "and how to fix it"
check "nothing was uploaded" test ! -e "$NGINX_ROOT/obj"
expect_rc 0 "STEPOP_CA_BUNDLE trusts the private CA" env STEPOP_CA_BUNDLE="$NGINX_CERT" "$STEPOP" artifact put "$T/obj" "$u"
check "the object arrived over TLS" cmp "$T/obj" "$NGINX_ROOT/obj"
expect_rc 0 "SSL_CERT_FILE works too" env SSL_CERT_FILE="$NGINX_CERT" "$STEPOP" artifact get "$u" "$T/back"
check "and the download is intact" cmp "$T/obj" "$T/back"
expect_rc 1 "a wrong host name is refused even with the CA" env STEPOP_CA_BUNDLE="$NGINX_CERT" \
    "$STEPOP" artifact stat "https://127.0.0.2:$NGINX_PORT/obj"
expect_rc 0 "STEPOP_TLS_INSECURE=1 turns verification off" env STEPOP_TLS_INSECURE=1 "$STEPOP" artifact stat "$u"
err_has "NOT verified" "and warns loudly"
expect_rc 1 "STEPOP_TLS_INSECURE=0 keeps it on" env STEPOP_TLS_INSECURE=0 "$STEPOP" artifact stat "$u"
done_testing
