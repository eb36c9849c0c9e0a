#!/usr/bin/env bash
# Fetches GraphiQL's browser files from the npm registry into gateway/static/graphiql/, with their licences,
# and writes ASSETS.json (package, version, file, sha256) that tests/test_graphiql.py checks them against.
# Run it to move to other versions (`make graphiql-assets`); the gateway itself never fetches anything.
set -euo pipefail
cd "$(dirname "$0")/.."
out=gateway/static/graphiql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# package@version  file in the package  name under $out  licence file in the package (or -: the monorepo's)
assets=(
  "react@18.3.1 umd/react.production.min.js react.production.min.js LICENSE"
  "react-dom@18.3.1 umd/react-dom.production.min.js react-dom.production.min.js LICENSE"
  "graphiql@3.9.0 graphiql.min.js graphiql.min.js LICENSE"
  "graphiql@3.9.0 graphiql.min.css graphiql.min.css LICENSE"
  "@graphiql/plugin-explorer@3.2.6 dist/index.umd.js plugin-explorer.umd.js -"
  "@graphiql/plugin-explorer@3.2.6 dist/style.css plugin-explorer.css -"
  "graphiql-explorer@0.9.0 - - LICENSE"
  "graphql-ws@5.16.2 umd/graphql-ws.min.js graphql-ws.min.js LICENSE.md"
)

mkdir -p "$out/licenses"
manifest=()
for line in "${assets[@]}"; do
  read -r spec file name licence <<<"$line"
  dir="$work/${spec//[@\/]/_}"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null && tar xzf ./*.tgz)
  fi
  package=${spec%@*}
  version=${spec##*@}
  licence_name="${package//\//-}.LICENSE"
  licence_name=${licence_name#@}
  if [ "$licence" != "-" ]; then
    cp "$dir/package/$licence" "$out/licenses/$licence_name"
  fi
  if [ "$file" != "-" ]; then
    cp "$dir/package/$file" "$out/$name"
    sum=$(sha256sum "$out/$name" | cut -d' ' -f1)
    manifest+=("{\"package\": \"$package\", \"version\": \"$version\", \"from\": \"$file\", \"file\": \"$name\", \"sha256\": \"$sum\"}")
  fi
done
# The explorer plugin lives in GraphiQL's repository and ships no licence file of its own: it is GraphiQL's.
cp "$out/licenses/graphiql.LICENSE" "$out/licenses/graphiql-plugin-explorer.LICENSE"
{
  echo "["
  for i in "${!manifest[@]}"; do
    sep=","; [ "$i" -eq $((${#manifest[@]} - 1)) ] && sep=""
    echo "  ${manifest[$i]}$sep"
  done
  echo "]"
} >"$out/ASSETS.json"
ls -l "$out"
