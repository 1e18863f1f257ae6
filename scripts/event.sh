#!/usr/bin/env bash
# Prints a sample event from events/ with its placeholders filled in, ready for
# `cargo lambda invoke --data-ascii "$(bash scripts/event.sh events/NAME.STATUS.json)"`.
#
#   ${PASSWORDLESS_API_KEY}, ${PASSWORDLESS_APPLICATION_ID}, ${PASSWORDLESS_LOGIN_ID}
#       from `source .passwordless/demo.env` (written by `serve` when it seeded the demo), or
#       exported by hand for a store seeded from your own kickstart file
#   ${CODE}
#       a code a start answered (`export CODE=…`)
#
# The shipped events carry no key (S30). A placeholder whose variable is unset is an error, not
# an empty string, and a value is used only if it cannot break out of the JSON string or the
# query string it lands in.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: bash scripts/event.sh events/NAME.STATUS.json" >&2
  exit 2
fi
file="$1"
text="$(cat "$file")"
placeholder='\$\{([A-Za-z_][A-Za-z0-9_]*)\}'
while [[ $text =~ $placeholder ]]; do
  name="${BASH_REMATCH[1]}"
  case "$name" in
    PASSWORDLESS_API_KEY | PASSWORDLESS_APPLICATION_ID | PASSWORDLESS_LOGIN_ID)
      hint="source .passwordless/demo.env" ;;
    CODE)
      hint="export CODE=… (the code a start answered)" ;;
    *)
      echo "$file: unknown placeholder \${$name}" >&2
      exit 1 ;;
  esac
  value="${!name:-}"
  if [ -z "$value" ]; then
    echo "$file needs \$$name: $hint" >&2
    exit 1
  fi
  if [[ ! $value =~ ^[A-Za-z0-9._@-]+$ ]]; then
    echo "\$$name holds characters a sample event cannot carry as they are" >&2
    exit 1
  fi
  text="${text//"\${$name}"/$value}"
done
printf '%s\n' "$text"
