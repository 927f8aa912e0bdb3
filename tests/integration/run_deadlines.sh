#!/usr/bin/env bash
# Deadlines outside the running phase: fetch_timeout and upload_timeout stop a store that stalls
# or trickles (tests/servers/faulty.js), and a file store that never ends (/dev/zero).
. "$(dirname "$0")/../lib.sh"
export STEPOP_LOG_INTERVAL=200ms
# Far longer than the deadlines, so only the deadline can end these transfers in time.
export STEPOP_HTTP_STALL_TIMEOUT=120s
store=$T/store
ms() { echo $(( $(date +%s%N) / 1000000 )); }

# The file store: /dev/zero unpacked is an empty archive followed by zeros without end.
manifest "$T/zero.json" "file://$store/runs/zero" "\"command\":[\"touch\",\"$T/zero-ran\"],\"workdir\":\"$T/w0\",
  \"inputs\":[{\"name\":\"zero\",\"uri\":\"file:///dev/zero\",\"unpack\":true}],\"fetch_timeout\":\"1s\""
start=$(ms)
expect_rc 66 "a file-store input past fetch_timeout fails the run (exit 66)" timeout 60 "$STEPOP" run --manifest "$T/zero.json"
check "within a few seconds of the deadline" test $(( $(ms) - start )) -lt 15000
err_has "input zero: stopped at the deadline: fetching inputs took longer than fetch_timeout 1.0s" "the message names the deadline"
is_eq "status: failed, input_error" "$(jq_py "$store/runs/zero/status.json" "d['phase'], d['reason']")" "failed input_error"
check "the status message names fetch_timeout" grep -q "fetch_timeout 1.0s" "$store/runs/zero/status.json"
check "the step never started" test ! -e "$T/zero-ran"

command -v node >/dev/null || { done_testing; }
start_faulty || { not_ok "faulty server starts"; done_testing; }
head -c 5000000 /dev/urandom >"$FAULTY_ROOT/obj.bin"

# An HTTP input that stalls after 300 kB.
manifest "$T/stall.json" "file://$store/runs/stall" "\"command\":[\"touch\",\"$T/stall-ran\"],\"workdir\":\"$T/w1\",
  \"inputs\":[{\"name\":\"obj\",\"uri\":\"$FAULTY_URL/_f/stall300000x100/obj.bin\"}],\"fetch_timeout\":\"2s\""
start=$(ms)
expect_rc 66 "an HTTP input stalled past fetch_timeout fails the run (exit 66)" timeout 60 "$STEPOP" run --manifest "$T/stall.json"
elapsed=$(( $(ms) - start ))
check "after the deadline, not before ($elapsed ms)" test "$elapsed" -ge 2000
check "and within a few seconds of it" test "$elapsed" -lt 15000
err_has "input obj: stopped at the deadline: fetching inputs took longer than fetch_timeout 2.0s" "the message names the input and the deadline"
is_eq "status: failed, input_error" "$(jq_py "$store/runs/stall/status.json" "d['phase'], d['reason']")" "failed input_error"
check "the step never started" test ! -e "$T/stall-ran"
check "no partial file is left" sh -c "! ls -A '$T/w1' | grep -q stepop-part"

# The same input within a generous deadline: the deadline does not cut a transfer that finishes.
faulty_reset
manifest "$T/fine.json" "file://$store/runs/fine" "\"command\":[\"true\"],\"workdir\":\"$T/w2\",
  \"inputs\":[{\"name\":\"obj\",\"uri\":\"$FAULTY_URL/obj.bin\"}],\"fetch_timeout\":\"1m\",\"upload_timeout\":\"1m\",
  \"outputs\":[{\"name\":\"out\",\"path\":\"obj\",\"format\":\"file\",\"uri\":\"$FAULTY_URL/up/fine.bin\"}]"
expect_rc 0 "inputs and outputs within their deadlines succeed" "$STEPOP" run --manifest "$T/fine.json"
check "the output arrived" cmp "$FAULTY_ROOT/obj.bin" "$FAULTY_ROOT/up/fine.bin"

# An HTTP upload the server stops reading after 100 kB; a second output is not started after the deadline.
head -c 32000000 /dev/urandom >"$T/big.bin"
manifest "$T/up.json" "file://$store/runs/up" "\"command\":[\"cp\",\"$T/big.bin\",\"big.bin\"],\"workdir\":\"$T/w3\",
  \"outputs\":[{\"name\":\"big\",\"path\":\"big.bin\",\"format\":\"file\",\"uri\":\"$FAULTY_URL/_f/stall100000x100/up/big.bin\"},
               {\"name\":\"small\",\"path\":\"small\",\"format\":\"tar\",\"optional\":true,\"uri\":\"$FAULTY_URL/up/small.tar\"}],
  \"upload_timeout\":\"2s\""
mkdir -p "$T/w3/small" && echo x >"$T/w3/small/f"
start=$(ms)
expect_rc 74 "an upload stalled past upload_timeout fails the run (exit 74)" timeout 60 "$STEPOP" run --manifest "$T/up.json"
elapsed=$(( $(ms) - start ))
check "after the deadline, not before ($elapsed ms)" test "$elapsed" -ge 2000
check "and within a few seconds of it" test "$elapsed" -lt 15000
err_has "output big: stopped at the deadline: uploading outputs took longer than upload_timeout 2.0s" "the message names the output and the deadline"
err_has "output small: stopped at the deadline" "an output after the deadline is not started, and said so"
is_eq "status: failed, upload_error" "$(jq_py "$store/runs/up/status.json" "d['phase'], d['reason'], d['exit_code']")" "failed upload_error 0"
check "the status message names upload_timeout" grep -q "upload_timeout 2.0s" "$store/runs/up/status.json"
check "nothing was stored" test ! -e "$FAULTY_ROOT/up/big.bin" -a ! -e "$FAULTY_ROOT/up/small.tar"
check "no outputs.json" test ! -e "$store/runs/up/outputs.json"

done_testing
