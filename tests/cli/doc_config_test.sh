#!/usr/bin/env bash
# Every configuration example in docs/ (each ```ini block) means what it
# says: completed where it is a fragment (a [daemon] node and a key), with
# the files it names made in a scratch root, `understudyd --check` accepts it
# and prints, for every `key = value` line of the example, that value (its
# inline comment not part of it).
set -u
understudyd=$1 docs=$2
work=$(mktemp -d /tmp/understudy-docconf.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
fail=0 blocks=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAILED: $1"; fail=1; fi; }

# An example's value as the writer meant it: up to an inline comment (`;`
# or `#` after whitespace), or inside double quotes.
value_of() {
  awk '{ v = $0; sub(/^[^=]*=[ \t]*/, "", v)
         if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v) }
         else { n = match(v, /[ \t][;#]/); if (n) v = substr(v, 1, n - 1) }
         sub(/[ \t]+$/, "", v); print v }' <<<"$1"
}
# The same value once its absolute paths point into the scratch root.
rooted() { sed -E "s#(^|[ ,=])/#\1$root/#g" <<<"$1"; }
# Spaces and default ports do not matter when comparing.
normal() { sed -E 's/[ \t]//g; s/:(7300|7301|9464)(,|$)/\2/g' <<<"$1"; }

# Files an example names, made where its rooted paths point.
make_files() { # config file
  local key value guest=
  while IFS= read -r line; do
    case "$line" in
      \[guest\ *\]) guest=${line#\[guest }; guest=${guest%\]}; continue ;;
      \[*) guest=; continue ;;
    esac
    key=$(sed -E 's/^[ \t]*([a-z_]+)[ \t]*=.*/\1/' <<<"$line")
    value=$(value_of "$line")
    [ "${value#/}" != "$value" ] || continue
    case "$key" in
      psk_file) mkdir -p "$(dirname "$value")"; (umask 077; printf '%064d\n' 1 >"$value") ;;
      kernel) mkdir -p "$(dirname "$value")"; : >"$value" ;;
      fence_command|netbuf_setup|drbdsetup|drbdadm)
        local program=${value%% *}
        mkdir -p "$(dirname "$program")"; printf '#!/bin/sh\nexit 0\n' >"$program"; chmod +x "$program" ;;
      xl_config)
        mkdir -p "$(dirname "$value")"
        printf 'name = "%s"\ntype = "hvm"\nmemory = 64\nvcpus = 1\nvif = [ %s ]\ndisk = [ %s ]\n' "$guest" \
          "'mac=00:16:3e:00:00:01,bridge=br0'" "'drbd:$guest-disk,xvda,w'" >"$value" ;;
    esac
  done <"$1"
}

for doc in "$docs"/*.md; do
  awk -v out="$work/block" -v doc="$(basename "$doc")" '
    /^[ \t]*```ini[ \t]*$/ { n++; indent = match($0, /[^ \t]/) - 1; file = out "." doc "." n; next }
    /^[ \t]*```[ \t]*$/ && file { close(file); file = ""; next }
    file { print substr($0, indent + 1) > file }' "$doc"
done

for block in "$work"/block.*; do
  [ -f "$block" ] || continue
  blocks=$((blocks + 1))
  name=${block#"$work"/block.}
  conf=$work/$name.conf
  {
    grep -q '^\[daemon\]' "$block" || printf '[daemon]\nnode = doc-host\n'
    grep -q '^\[replication\]' "$block" || printf '[replication]\npsk_file = /etc/understudy/pair.key\n'
    cat "$block"
  } | while IFS= read -r line; do
    case "$line" in
      *=*) printf '%s\n' "$(rooted "$line")" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done >"$conf"
  make_files "$conf"
  out=$("$understudyd" --check --config "$conf" 2>&1); status=$?
  check "$name: understudyd --check accepts it" '[ $status -eq 0 ]'
  [ $status -eq 0 ] || { echo "$out" | sed 's/^/   /'; continue; }
  section=
  while IFS= read -r line; do
    case "$line" in
      \[*\]*) section=$(sed -E 's/^\[([^]]*)\].*/\1/' <<<"$line"); continue ;;
      *=*) ;;
      *) continue ;;
    esac
    trimmed=$(sed -E 's/^[ \t]+//' <<<"$line")
    case "$trimmed" in \;*|\#*) continue ;; esac
    key=$(sed -E 's/^([a-z_]+)[ \t]*=.*/\1/' <<<"$trimmed")
    want=$(normal "$(rooted "$(value_of "$trimmed")")")
    got=$(grep -m1 -F "$section.$key = " <<<"$out" | sed -E 's/^[^=]*= //')
    got=$(normal "$got")
    check "$name: [$section] $key means '$want'" '[ "$got" = "$want" ]'
    [ "$got" = "$want" ] || echo "   --check says: '$got'"
  done <"$block"
done
check "the docs hold configuration examples" '[ $blocks -ge 4 ]'
exit $fail
