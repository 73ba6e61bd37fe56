#!/usr/bin/env bash
# The manual pages and bash completions stay true to the code:
#  - the four pages lint clean (groff -man -ww; mandoc -Tlint when installed);
#  - credsignd.conf(5) has an entry ".B name" for every setting of
#    conf/config.c's schema table, giving its range, default or "required",
#    and one for every member of an operator preset (signer/preset.c);
#  - every long option of credsignd, credsign and credsign-admin (their
#    getopt tables) is in the program's page and in its completion;
#  - each completion loads in bash and completes sub-commands and options;
#  - the systemd unit template (hsm-setup/credsignd.service): no placeholder
#    in a comment (install-production fills in the settings' only), and
#    install-production fills in every placeholder of its settings.
#
#   man_test.sh SOURCE_DIR
set -uo pipefail
src=${1:?usage: man_test.sh SOURCE_DIR}
man=$src/docs/man
comp=$src/tools/completions
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# ---- lint ----------------------------------------------------------------------
command -v groff > /dev/null || { echo "groff is missing: run hsm-setup/install-deps"; exit 1; }
pages=("$man/credsignd.8" "$man/credsign.1" "$man/credsign-admin.8" "$man/credsignd.conf.5")
for p in "${pages[@]}"; do
	[ -f "$p" ] || { fail "$p missing"; continue; }
	out=$(groff -man -ww -z "$p" 2>&1)
	[ -z "$out" ] || fail "groff warns on ${p##*/}: $out"
	if command -v mandoc > /dev/null; then
		out=$(mandoc -Tlint -W warning "$p" 2>&1)
		[ -z "$out" ] || fail "mandoc -Tlint on ${p##*/}: $out"
	fi
	# it renders, with its name and a SEE ALSO section
	text=$(groff -man -Tascii -P-cbu "$p" 2> /dev/null)
	base=${p##*/}
	grep -q "^NAME" <<< "$text" && grep -q "^SEE ALSO" <<< "$text" ||
		fail "${base} does not render with NAME and SEE ALSO"
	# an alternating-font macro glues its arguments: ".RB ( GET /x )"
	# renders "(GET/x)"; a request is written .RB ( "GET /x" )
	glued=$(grep -oE "(GET|POST|PUT|DELETE|HEAD)/[^ ]*" <<< "$text")
	[ -z "$glued" ] || fail "${base} renders requests without their space: $(xargs <<< "$glued")"
done

# ---- credsignd.conf(5) against the schema table and the preset loader ----------
python3 - "$src/conf/config.c" "$src/signer/preset.c" "$man/credsignd.conf.5" <<'PY' || failed=1
import re, sys
config_c, preset_c, page = sys.argv[1:4]
code = open(config_c).read()
header = open(config_c[:-1] + "h").read()
table = code[code.index("schema[] = {"):]
table = table[:table.index("\n};")]
# numbers may be macros of config.h or config.c
macros = dict(re.findall(r"^#define\s+(\w+)\s+(-?\d+)\s*$", header + code, re.M))
def number(v):
    v = v.strip()
    return macros.get(v, v)
rows = [(n, k, r, d, number(a), number(b), number(c)) for n, k, r, d, a, b, c in re.findall(
    r'\{\s*"([A-Za-z0-9_.]+)",\s*(K_\w+),\s*(true|false),\s*(NULL|"[^"]*"),'
    r'\s*([^,]+),\s*([^,]+),\s*([^,]+),', table)]
opened = table.count('{"')
if opened != len(rows) or any(not re.fullmatch(r"-?\d+", x) for row in rows for x in row[4:]):
    sys.exit(f"FAIL: parsed {len(rows)} of the {opened} rows of {config_c}'s schema table: "
             "the parser in man_test.sh is out of date")

lines = open(page).read().split("\n")
def plain(s):
    s = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", s)
    return s.replace("\\-", "-").replace("\\(dq", '"').replace("\\(aq", "'").replace("\\&", "")

# entry text: from its tag (".B name" after ".TP", or ".SS name") to the
# next .TP/.SS/.SH
entries = {}
for i, l in enumerate(lines):
    m = re.match(r'\.(?:B|SS) "?([A-Za-z0-9_.\\-]+)"?\s*$', l)
    if m and (l.startswith(".SS") or (i > 0 and lines[i - 1] == ".TP")):
        name = m.group(1).replace("\\-", "-")
        body = []
        for nxt in lines[i + 1:]:
            if re.match(r"\.(TP|SS|SH)\b", nxt):
                break
            body.append(plain(nxt))
        entries.setdefault(name, " ".join(body))

bad = []
for name, kind, required, default, def_int, lo, hi in rows:
    if name not in entries:
        bad.append(f"{name}: no entry (a line '.B {name}' in credsignd.conf.5)")
        continue
    text = entries[name]
    if kind == "K_GROUP":
        continue
    def need(what):
        if what not in text:
            bad.append(f"{name}: the entry does not say {what!r} (config.c: {kind}, "
                       f"default {default if default != 'NULL' else def_int}, range {lo}..{hi})")
    if kind not in ("K_INT", "K_BOOL") and int(hi) > 0:
        need(f"{lo}..{hi}")  # e.g. the length of a text
    if required == "true":
        need("required")
    elif kind == "K_INT":
        need(f"{lo}..{hi}")
        need(f"default {def_int}" if int(lo) <= int(def_int) <= int(hi) else "default unset")
    elif kind == "K_BOOL":
        need("default " + ("true" if def_int != "0" else "false"))
    elif default != "NULL":
        need(f'"{default[1:-1]}"')
    elif "default unset" not in text and "default empty" not in text:
        need("default unset")  # (or "default empty", for a list)

pre = open(preset_c).read()
m = re.search(r"known_keys\[\]\s*=\s*\{([^}]*)\}", pre)
if not m:
    bad.append(f"cannot find known_keys in {preset_c}: the parser is out of date")
else:
    for key in re.findall(r'"([a-z_]+)"', m.group(1)):
        if key not in entries:
            bad.append(f"preset member {key}: no entry (a line '.B {key}' under presets)")
for b in bad:
    print("FAIL: credsignd.conf.5:", b)
print(f"credsignd.conf.5: {len(rows)} schema rows checked")
sys.exit(1 if bad else 0)
PY

# ---- options: the getopt tables against the pages and the completions ----------
long_options() { # FILE: the names of its struct option table
	grep -oE '\{"[a-z][a-z0-9-]*", *(no|required|optional)_argument' "$1" | sed -E 's/^\{"([^"]*)".*/\1/'
}
for prog in credsignd:signer/credsignd.c:credsignd.8 credsign:tools/credsign.c:credsign.1 \
	credsign-admin:tools/credsign_admin.c:credsign-admin.8 credsign-admin:tools/admin_ceremony.c:credsign-admin.8 \
	credsign-admin:tools/admin_store.c:credsign-admin.8 credsign-admin:tools/admin_evidence.c:credsign-admin.8; do
	IFS=: read -r name file page <<< "$prog"
	opts=$(long_options "$src/$file")
	[ "$(wc -w <<< "$opts")" -ge 3 ] || fail "no options found in $file"
	for o in $opts; do
		o_roff=${o//-/\\-}
		grep -qF -- "\\-\\-$o_roff" "$man/$page" || fail "$page does not document --$o ($file)"
		grep -qE -- "--$o( |'|\"|\)|$)" "$comp/$name" || fail "completion $name does not offer --$o ($file)"
	done
done

# ---- completions: load in bash and complete ---------------------------------------
complete_words() { # SCRIPT FUNCTION WORD... : prints COMPREPLY, one per line
	local script=$1 fn=$2
	shift 2
	bash --norc --noprofile -c '
		set -u
		. "$1" || exit 1
		fn=$2; shift 2
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		# (compopt fails outside of real completion: the status is not the reply)
		"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]:-}" 2> /dev/null
		printf "%s\n" "${COMPREPLY[@]}"' complete "$script" "$fn" "$@"
}
expect() { # WANT SCRIPT FUNCTION WORD... : WANT is the exact sorted reply, space-separated
	local want=$1 got
	shift
	got=$(complete_words "$@" 2>&1 | sort | xargs)
	[ "$got" = "$want" ] || fail "completing '${*:3}' with $1: got '$got', want '$want'"
}
for name in credsign credsign-admin credsignd; do
	fn=_${name//-/_}
	reg=$(bash --norc --noprofile -c '. "$1" && complete -p "$2"' x "$comp/$name" "$name" 2>&1)
	[ "$reg" = "complete -F $fn $name" ] || fail "$name: the completion does not register $fn: $reg"
done
c=$comp/credsign a=$comp/credsign-admin d=$comp/credsignd
expect "access cert evidence generate inventory jwks policy sign signature verify verify-signature" "$c" _credsign credsign ""
expect "find get" "$c" _credsign credsign signature ""
expect "--sha256" "$c" _credsign credsign signature find --sh
expect "digest dsse jws" "$c" _credsign credsign sign --profile release --format ""
expect "--dsse" "$c" _credsign credsign verify-signature --jwks j.json --ds
expect "check" "$c" _credsign credsign access ""
expect "audit.read" "$c" _credsign credsign access check spiffe://t/x au
expect "soc2" "$c" _credsign credsign --config f access check spiffe://t/x generate p e so
expect "--config" "$c" _credsign credsign access check --c
expect "generate" "$c" _credsign credsign --url https://x ge
expect "get" "$c" _credsign credsign --cacert ca.pem cert ""
expect "--type" "$c" _credsign credsign generate --ty
expect "passphrase password" "$c" _credsign credsign generate --type pa
expect "env" "$c" _credsign credsign generate --format e
expect "html" "$c" _credsign credsign policy --format h
expect "soc2,pci-dss-4" "$c" _credsign credsign policy --standards soc2,pc
expect "db-development db-production db-staging" "$c" _credsign credsign generate --preset db-
expect "--credential-file" "$c" _credsign credsign verify cert.jws --c
# an option's argument is not taken for the command
expect "--jwks" "$c" _credsign credsign --credential-file f verify --j
expect "export purge verify" "$a" _credsign_admin credsign-admin --format jsonl audit ""
expect "audit ceremony cert evidence key store token" "$a" _credsign_admin credsign-admin ""
expect "init migrate" "$a" _credsign_admin credsign-admin -c f store ""
expect "--owner-connection --owner-password-file" "$a" _credsign_admin credsign-admin store init --ow
expect "--jwks" "$a" _credsign_admin credsign-admin store migrate --to postgresql --owner-connection x --j
expect "postgresql" "$a" _credsign_admin credsign-admin store migrate --to ""
expect "csr generate jwk list register-chain" "$a" _credsign_admin credsign-admin --config /etc/credsign/credsignd.conf key ""
expect "approve execute list show start transcript verify-transcript" "$a" _credsign_admin credsign-admin ceremony ""
expect "activate compromise destroy purge retire revoke" "$a" _credsign_admin credsign-admin ceremony start --action ""
expect "--officer-cert --officer-key --officer-module" "$a" _credsign_admin credsign-admin ceremony approve cer_x --officer
expect "json text" "$a" _credsign_admin credsign-admin key list --format ""
expect "export purge verify" "$a" _credsign_admin credsign-admin audit ""
expect "--san --subject" "$a" _credsign_admin credsign-admin key csr --s
expect "--file --from-seq" "$a" _credsign_admin credsign-admin -c f audit verify --f
expect "--check-config --config" "$d" _credsignd credsignd --c
expect "--offline" "$d" _credsignd credsignd --check-config f --o
expect "--verbose --version" "$d" _credsignd credsignd --ver
expect "--check-config --config" "$d" _credsignd credsignd -v --c
expect "--verbose" "$d" _credsignd credsignd --check-config f --v
expect "--verbose" "$d" _credsignd credsignd --config f --
expect "--verbose --version" "$a" _credsign_admin credsign-admin --ver
# file arguments complete file names
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
touch "$tmp/credsignd.conf"
expect "$tmp/credsignd.conf" "$d" _credsignd credsignd --check-config "$tmp/cred"
expect "$tmp/credsignd.conf" "$a" _credsign_admin credsign-admin --config "$tmp/cred"
expect "$tmp/credsignd.conf" "$c" _credsign credsign --cacert "$tmp/cred"

# ---- the systemd unit template --------------------------------------------------
unit=$src/hsm-setup/credsignd.service
if grep -nE '^[[:space:]]*#.*@[A-Z]+@' "$unit"; then
	fail "a comment of the unit template names a placeholder (the installed unit would read the value)"
fi
for ph in $(grep -vE '^[[:space:]]*#' "$unit" | grep -oE '@[A-Z]+@' | sort -u); do
	grep -qF "s|$ph|" "$src/hsm-setup/install-production" || fail "install-production does not fill in $ph"
done

[ "$failed" -eq 0 ] && echo "man pages and completions: ok"
exit "$failed"
