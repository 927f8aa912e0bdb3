#!/usr/bin/env bash
# Shell completion: `stepop completion bash` driven through its completion function with
# COMP_WORDS/COMP_CWORD (commands, options, subcommands, flavors, operators from a temp config,
# run ids from a temp file store); the zsh and fish scripts load without errors where those
# shells are installed; the --list helper's output and usage errors.
. "$(dirname "$0")/../lib.sh"

mkdir -p "$T/bin" "$T/work" "$T/store/runs/run-aaa" "$T/store/runs/run-bbb" "$T/xdg"
ln -s "$STEPOP" "$T/bin/stepop"
ln -s "$STEPOP" "$T/bin/stepop-submit"
export PATH="$T/bin:$PATH" XDG_CONFIG_HOME="$T/xdg" XDG_DATA_HOME="$T/xdg"
echo '{}' >"$T/store/runs/run-aaa/status.json"
echo stray >"$T/store/runs/stray.txt"
cat >"$T/work/stepop.json" <<JSON
{ "store": "file://$T/store/",
  "operators": { "gpu-box": { "flavor": "docker", "settings": { "token": "s3cret-never-shown" } },
                 "kube-a": { "flavor": "kubernetes" } } }
JSON
chmod 600 "$T/work/stepop.json"
cd "$T/work"

expect_rc 0 "completion bash prints a script" stepop completion bash
check "the bash script parses" bash -n "$T/out"
cp "$T/out" "$T/stepop.bash"

# complete WORDS...: the candidates (sorted, one a line) for the last word, via _stepop.
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _stepop; for w in "${COMPREPLY[@]}"; do echo "$w"; done | sort' \
        _ "$T/stepop.bash" "$@"
}
want() { # DESCRIPTION EXPECTED WORDS...
    local d=$1 exp=$2
    shift 2
    is_eq "$d" "$(complete_words "$@" | tr '\n' ' ')" "$exp"
}

want "commands from the table" "status submit " stepop s
want "every command, help and completion included" \
    "$(stepop completion --list commands | cut -f1 | sort | tr '\n' ' ')" stepop ""
want "submit's options" "--detach --dry-run " stepop submit --d
want "stepop-submit completes submit's options" "--detach --dry-run " stepop-submit --d
want "flavors for --flavor" "docker " stepop submit --flavor do
want "operators from the config for --operator" "gpu-box kube-a " stepop submit --operator ""
want "operators for operator describe" "gpu-box " stepop operator describe g
want "operator subcommands" "describe list " stepop operator ""
want "artifact subcommands" "presign put " stepop artifact p
want "artifact options" "--max-bytes --max-entries --method " stepop artifact get --m
want "gpu options" "--min-cc --min-d2h-gbps --min-devices --min-dtod-gbps --min-h2d-gbps --min-memory " stepop gpu smoke --min-
want "run ids from the file store for status" "run-aaa run-bbb " stepop status run-
want "run ids for logs" "run-aaa run-bbb " stepop logs ""
want "and for cancel" "run-bbb " stepop cancel run-b
want "logs options" "--attempt --follow " stepop logs --
want "shells for completion" "bash " stepop completion b
want "commands for help" "artifact " stepop help ar
want "a value option leaves completion to the shell's files" "" stepop submit --store fi
want "so does its short form" "" stepop submit -e ""

# The helper form: every option of every command equals what the table gives the scripts.
expect_rc 0 "--list options submit" stepop completion --list options submit
out_has "--operator=" "value options end in ="
out_has "--env=	-e" "short forms follow a tab"
expect_rc 0 "--list operators" stepop completion --list operators
check "operators are listed by name, no settings" bash -c "! grep -q s3cret '$T/out' && [ \"\$(sort '$T/out' | tr '\n' ' ')\" = 'gpu-box kube-a ' ]"
expect_rc 0 "--list flavors" stepop completion --list flavors
out_has "kubernetes" "the registry's flavors"
expect_rc 0 "--list subcommands gpu" stepop completion --list subcommands gpu
is_eq "gpu's subcommands" "$(tr '\n' ' ' <"$T/out")" "check smoke "
# Each listed subcommand is one the command's own --help names (the lists sit beside hand-written parsers).
for c in artifact gpu flavor operator; do
    stepop $c --help >"$T/help" 2>&1
    for s in $(stepop completion --list subcommands $c); do
        check "stepop $c --help names $s" grep -qw -- "$s" "$T/help"
    done
done
expect_rc 2 "an unknown shell is a usage error" stepop completion tcsh
err_has 'unknown shell "tcsh"' "and names it"
expect_rc 2 "an unknown list is a usage error" stepop completion --list secrets
expect_rc 2 "--list options of an unknown command" stepop completion --list options frob

# No config and no store: the lists are empty, not errors.
cd "$T"
XDG_DATA_HOME="$T/empty" expect_rc 0 "no config: --list runs is empty" stepop completion --list runs
check "and prints nothing" test ! -s "$T/out"
cd "$T/work"

if command -v zsh >/dev/null; then
    expect_rc 0 "completion zsh" stepop completion zsh
    check "the zsh script loads after compinit" zsh -fc 'autoload -U compinit; compinit -u -d "$1/zcompdump"; source "$2"' _ "$T" "$T/out"
    check "and registers _stepop for stepop" zsh -fc 'autoload -U compinit; compinit -u -d "$1/zcompdump"; source "$2"; [[ $_comps[stepop] == _stepop && $_comps[stepop-submit] == _stepop ]]' _ "$T" "$T/out"
else
    ok "# SKIP zsh not installed"
fi
if command -v fish >/dev/null; then
    check "the fish script loads" fish --no-config -c 'stepop completion fish | source'
    is_eq "fish completes commands" "$(fish --no-config -c 'stepop completion fish | source; complete -C "stepop su"' | cut -f1 | tr '\n' ' ')" "submit "
    is_eq "fish completes operators" "$(fish --no-config -c 'stepop completion fish | source; complete -C "stepop submit --operator "' | cut -f1 | sort | tr '\n' ' ')" "gpu-box kube-a "
else
    ok "# SKIP fish not installed"
fi

# Where `make install` puts the scripts is where each shell's loader finds them by itself.
share="$T/share"
mkdir -p "$T/home" "$share/bash-completion/completions" "$share/zsh/site-functions" "$share/fish/vendor_completions.d"
stepop completion bash >"$share/bash-completion/completions/stepop"
stepop completion zsh >"$share/zsh/site-functions/_stepop"
stepop completion fish >"$share/fish/vendor_completions.d/stepop.fish"
if [ -f /usr/share/bash-completion/bash_completion ]; then
    is_eq "bash-completion loads it from share/bash-completion/completions" "$(XDG_DATA_DIRS="$share" bash -c \
        '. /usr/share/bash-completion/bash_completion; __load_completion stepop; COMP_WORDS=(stepop sub); COMP_CWORD=1; _stepop; echo "${COMPREPLY[*]}"')" submit
else
    ok "# SKIP bash-completion not installed"
fi
if command -v zsh >/dev/null; then
    check "zsh's compinit finds it in share/zsh/site-functions" zsh -fc \
        'fpath=("$1/zsh/site-functions" $fpath); autoload -U compinit; compinit -u -d "$2/zcompdump2"; [[ $_comps[stepop] == _stepop ]]' _ "$share" "$T"
else
    ok "# SKIP zsh not installed"
fi
if command -v fish >/dev/null; then
    is_eq "fish loads it from share/fish/vendor_completions.d" \
        "$(HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" XDG_DATA_HOME="$T/home/.local" XDG_DATA_DIRS="$share" \
            fish -c 'complete -C "stepop su"' | cut -f1)" submit
else
    ok "# SKIP fish not installed"
fi

done_testing
