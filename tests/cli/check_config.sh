#!/usr/bin/env bash
# credsignd --check-config: exit 0 on a good file, 1 with FILE:LINE messages
# on a bad one (FILE as given on the command line); the annotated example
# documents exactly the known settings. The module here is a placeholder,
# so the checks run with --offline, which skips only the token: the TLS
# material is checked (a self-signed certificate made here). Without it the
# token is opened too (against a real token:
# tests/integration/diagnostics_test.sh).
set -euo pipefail
credsignd=${1:?usage: check_config.sh CREDSIGND SOURCE_DIR}
src=${2:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
umask 077
fail() { echo "FAIL: $*"; cat err.txt 2> /dev/null; exit 1; }
for f in placeholder.pem module.so; do echo placeholder > $f; done
# TLS material that passes the checks: a server certificate (its own CA)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \
  -subj /CN=check-config -days 2 2> /dev/null
cp cert.pem ca.pem
cp "$src/conf/presets.conf" presets.conf
echo 123456 > user.pin
cat > good.conf <<'CONF'
tls = { cert = "cert.pem"; key = "key.pem"; ca = "ca.pem"; };
pkcs11 = { module = "module.so"; token_uri = "pkcs11:token=t"; pin_file = "user.pin";
           signing_key = "pkcs11:object=k"; };
server = { allow_root = true; };
CONF
"$credsignd" --offline --check-config good.conf | grep -q "configuration valid"
"$credsignd" -v --offline --check-config good.conf | grep -q "configuration valid" || fail "-v refused"
"$credsignd" --offline --verbose --check-config good.conf | grep -q "configuration valid" || fail "--verbose refused"

# Without --offline the module, the token and the TLS material are opened:
# placeholders are refused, each problem naming its setting; what the token
# layer logs about a problem is indented under it, not a log line.
sed 's/"cert.pem"/"placeholder.pem"/; s/"ca.pem"/"placeholder.pem"/' good.conf > ph.conf
if "$credsignd" --check-config ph.conf > out.txt 2> err.txt; then
  fail "placeholders passed the online check"
fi
for want in "ph.conf:2: setting 'pkcs11.module': module.so: PKCS#11 module could not be loaded" \
            "ph.conf:1: setting 'tls.cert': $tmp/placeholder.pem: no certificate" \
            "ph.conf:1: setting 'tls.ca': $tmp/placeholder.pem: no CA certificate" \
            "ph.conf: configuration invalid"; do
  grep -qF "$want" err.txt || fail "no \"$want\""
done
! grep -q "configuration valid" out.txt || fail "said valid"
grep -A1 "setting 'pkcs11.module'" err.txt | grep -q "^    error: no p11-kit module named 'module.so'" ||
  fail "the token layer's reason is not under the pkcs11.module line"
! grep -qE "(^|[[:space:]])(ts|level|fn)=" err.txt || fail "log lines (logfmt) in the --check-config output"
# every problem line names the file as given, like the verdict
grep -E "^[^ ].*: setting '" err.txt | grep -v "^ph.conf:" && fail "a problem line names the file otherwise"
# usage: --offline belongs to --check-config; one action at a time
for args in "--offline --config good.conf" "--config good.conf --check-config good.conf" "--check-config good.conf extra"; do
  rc=0
  # shellcheck disable=SC2086
  "$credsignd" $args > /dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || fail "credsignd $args: exit $rc, not a usage error (2)"
done
"$credsignd" --help | grep -q -- "--check-config FILE \[--offline\]" || fail "--help lacks --offline"
"$credsignd" --help | grep -q -- "-v, --verbose" || fail "--help lacks -v, --verbose"

# --offline skips only the token: the TLS material is still checked (an
# expired server certificate, a key that does not match it) ...
mkdir ca-db && : > ca-db/index.txt && echo 01 > ca-db/serial
printf '[ca]\ndefault_ca = d\n[d]\ndatabase = ca-db/index.txt\nserial = ca-db/serial\nnew_certs_dir = ca-db\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n' > ca.cnf
{ openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout old.key -subj /CN=expired -out old.csr &&
  openssl ca -batch -notext -config ca.cnf -selfsign -keyfile old.key -in old.csr -out old.pem \
    -startdate 20200101000000Z -enddate 20210101000000Z; } > /dev/null 2>&1 || fail "cannot make an expired certificate"
sed 's/"cert.pem"/"old.pem"/' good.conf > expired.conf
if "$credsignd" --offline --check-config expired.conf > out.txt 2> err.txt; then fail "--offline passed an expired certificate"; fi
grep -q "^expired.conf:1: setting 'tls.cert': $tmp/old.pem: the server certificate (CN=expired) expired on 2021-01-01T00:00:00Z" err.txt ||
  fail "--offline did not name the expired certificate"
grep -q "setting 'tls.key': $tmp/key.pem: the key does not match the certificate of tls.cert" err.txt ||
  fail "--offline did not check the key against the certificate"
# ... but a pkcs11: tls.key is in the token, which --offline does not open
sed 's/key = "key.pem"/key = "pkcs11:object=tls"/' good.conf > tokenkey.conf
"$credsignd" --offline --check-config tokenkey.conf > out.txt 2> err.txt || fail "--offline loaded a pkcs11: tls.key"
grep -q "configuration valid" out.txt || fail "tokenkey.conf not valid"

# Settings that contradict each other are refused when the file is loaded,
# naming both: the probes' port is the API's, a key URI names another token
sed 's/^server = {/server = { listen = "127.0.0.1:9443"; health_listen = "127.0.0.1:9443";/' good.conf > probes.conf
if "$credsignd" --offline --check-config probes.conf 2> err.txt; then fail "health_listen = listen accepted"; fi
grep -q "^probes.conf:4: setting 'server.health_listen': 127.0.0.1:9443 takes the port of server.listen (127.0.0.1:9443)" err.txt ||
  fail "health_listen = listen not named"
sed 's/health_listen = "127.0.0.1:9443"/health_listen = "0.0.0.0:9443"/' probes.conf > wildcard.conf
if "$credsignd" --offline --check-config wildcard.conf 2> err.txt; then fail "health_listen on 0.0.0.0, same port, accepted"; fi
sed 's/health_listen = "127.0.0.1:9443"/health_listen = "127.0.0.1:9444"/' probes.conf > ports.conf
"$credsignd" --offline --check-config ports.conf > /dev/null 2> err.txt || fail "two ports refused"
sed 's/signing_key = "pkcs11:object=k"/signing_key = "pkcs11:token=other;object=k"/' good.conf > other-token.conf
if "$credsignd" --offline --check-config other-token.conf 2> err.txt; then fail "a signing key in another token accepted"; fi
grep -qF "other-token.conf:3: setting 'pkcs11.signing_key': pkcs11:token=other;object=k: names token=other, but pkcs11.token_uri selects token=t" err.txt ||
  fail "the key URI's token is not named with pkcs11.token_uri"
sed 's/key = "key.pem"/key = "pkcs11:serial=1234;object=tls"/; s/token_uri = "pkcs11:token=t"/token_uri = "pkcs11:token=t;serial=99"/' good.conf > other-serial.conf
if "$credsignd" --offline --check-config other-serial.conf 2> err.txt; then fail "a tls.key in another token accepted"; fi
grep -qF "setting 'tls.key': pkcs11:serial=1234;object=tls: names serial=1234, but pkcs11.token_uri selects serial=99" err.txt ||
  fail "the tls.key URI's serial is not named with pkcs11.token_uri"
sed 's/signing_key = "pkcs11:object=k"/signing_key = "pkcs11:token=t;object=k"/' good.conf > same-token.conf
"$credsignd" --offline --check-config same-token.conf > /dev/null 2> err.txt || fail "a key URI naming the token refused"

# a syntax error says so once
printf 'tls = { cert = "cert.pem" \n' > syntax.conf
if "$credsignd" --offline --check-config syntax.conf 2> err.txt; then fail "a syntax error accepted"; fi
grep -qx "syntax.conf:2: syntax error" err.txt || fail "the syntax error is not 'syntax.conf:2: syntax error'"

sed 's/pin_file = "user.pin"/pin_file = "user.pin"; sesions = 2/' good.conf > bad.conf
if "$credsignd" --offline --check-config bad.conf 2> err.txt; then
  echo "FAIL: a bad file was accepted"; exit 1
fi
grep -q "bad.conf:2: setting 'pkcs11.sesions': unknown setting" err.txt || { cat err.txt; exit 1; }

# Operator presets live in the main configuration, validated like the rest.
cat good.conf - > custom.conf <<'CONF'
presets = {
  team-vault = { version = 3; title = "Team vault"; standards = [ "internal policy 4.2" ];
    types = [ "password" ]; charset = "alnum"; classes = [ "upper", "digit" ];
    min_length = 20; default_length = 24; strength_bits = 128; rotation = "yearly"; };
};
CONF
"$credsignd" --offline --check-config custom.conf | grep -q "configuration valid" || { echo "FAIL: operator preset refused"; exit 1; }
sed 's/team-vault = { version = 3;/soc2 = { version = 3;/' custom.conf > clash.conf
if "$credsignd" --offline --check-config clash.conf 2> err.txt; then echo "FAIL: a built-in preset was redefined"; exit 1; fi
grep -q "clash.conf:[0-9]*: setting 'presets.soc2': a preset of this name already exists" err.txt || { cat err.txt; exit 1; }
sed 's/strength_bits = 128;/strength_bits = 80;/' custom.conf > weak.conf
if "$credsignd" --offline --check-config weak.conf 2> err.txt; then echo "FAIL: a preset below 112 bits was accepted"; exit 1; fi
grep -q "setting 'presets.team-vault.strength_bits': 80 is out of range 112..256" err.txt || { cat err.txt; exit 1; }

# access.grants: presets they name must exist (the operator's included);
# one identity with generator and auditor rights is a warning
cat custom.conf - > grants.conf <<'CONF'
access = { grants = (
  { identity = "spiffe://t/ci"; role = "generator"; projects = [ "p" ]; environments = [ "*" ];
    presets = [ "soc2", "team-vault" ]; },
  { identity = "spiffe://t/*"; role = "auditor"; projects = [ "*" ]; }
); };
CONF
"$credsignd" --offline --check-config grants.conf > out.txt 2> err.txt || { echo "FAIL: grants refused"; cat err.txt; exit 1; }
grep -q "configuration valid" out.txt || { echo "FAIL: grants.conf not valid"; exit 1; }
grep -qF "grants.conf: warning: separation of duties: spiffe://t/ci holds generator rights (access.grants[0]) and auditor rights (access.grants[1])" err.txt ||
  { echo "FAIL: no separation-of-duties warning"; cat err.txt; exit 1; }
sed 's/"soc2", "team-vault"/"soc2", "team-vaults"/' grants.conf > unknown.conf
if "$credsignd" --offline --check-config unknown.conf 2> err.txt; then echo "FAIL: an unknown preset in a grant was accepted"; exit 1; fi
grep -q "unknown.conf:[0-9]*: setting 'access.grants.\[0\].presets': unknown preset 'team-vaults'" err.txt || { cat err.txt; exit 1; }

# signing (delegated signing): profiles and the grants that use them, each
# refusal at its line, naming the setting
cat good.conf - > signing.conf <<'CONF'
signing = {
  max_request_bytes = 1048576;
  batch_max = 50;
  profiles = (
    { name = "release"; key = "pkcs11:object=release-1"; formats = [ "jws", "dsse", "digest" ];
      typ = "release+jwt"; payload_types = [ "application/vnd.in-toto+json" ]; },
    { name = "tokens"; key = "pkcs11:token=t;object=tokens-1"; formats = [ "jws" ]; typ = "at+jwt";
      iss = "https://issuer.example"; aud = [ "https://api.example" ]; lifetime_seconds = 300; }
  );
};
access = { grants = (
  { identity = "spiffe://t/ci"; role = "signer"; profiles = [ "release" ]; rate = 10; },
  { identity = "spiffe://t/auditor"; role = "auditor"; projects = [ "*" ]; profiles = [ "*" ]; }
); };
CONF
"$credsignd" --offline --check-config signing.conf > out.txt 2> err.txt || fail "signing.conf refused"
grep -q "configuration valid" out.txt || fail "signing.conf not valid"
# a profile allowing digest beside jws/dsse: a warning (the key's JWS or DSSE
# signature over any bytes can be had as a digest signature), not an error
grep -qF "signing.conf:9: warning: setting 'signing.profiles.[0].formats': profile release: digest shares key pkcs11:object=release-1 with jws/dsse: a signer can obtain a JWS or DSSE signature of this key over any bytes (claims, typ, payload type unchecked); give digest a profile of its own (docs/delegated-signing.md)" err.txt ||
  fail "no warning of digest sharing the key of profile release"
[ "$(grep -c "digest shares key" err.txt)" -eq 1 ] || fail "digest sharing warned of for a profile without digest"
sed 's/formats = \[ "jws", "dsse", "digest" \];/formats = [ "digest" ];/; s/ typ = "release+jwt"; payload_types = \[ "application\/vnd.in-toto+json" \];//' \
  signing.conf > digest-only.conf
"$credsignd" --offline --check-config digest-only.conf > out.txt 2> err.txt || fail "digest-only.conf refused"
! grep -q "digest shares key" err.txt || fail "a digest-only profile warned of"
# refuse WANT FILE: --check-config fails and prints the line WANT
refuse() {
  if "$credsignd" --offline --check-config "$2" > out.txt 2> err.txt; then fail "$2 accepted"; fi
  grep -qF -- "$1" err.txt || fail "$2: no \"$1\""
}
sed 's/key = "pkcs11:object=release-1"/key = "pkcs11:object=k"/' signing.conf > profile-certkey.conf
refuse "profile-certkey.conf:9: setting 'signing.profiles.[0].key': pkcs11:object=k is pkcs11.signing_key, the certificate-signing key: a profile needs a key of its own" profile-certkey.conf
sed 's/key = "pkcs11:token=t;object=tokens-1"/key = "pkcs11:object=release-1"/' signing.conf > profile-samekey.conf
refuse "profile-samekey.conf:11: setting 'signing.profiles.[1].key': pkcs11:object=release-1 is also the key of signing.profiles.[0]" profile-samekey.conf
sed 's/key = "pkcs11:token=t;object=tokens-1"/key = "pkcs11:token=u;object=tokens-1"/' signing.conf > profile-token.conf
refuse "profile-token.conf:11: setting 'signing.profiles.[1].key': pkcs11:token=u;object=tokens-1: names token=u, but pkcs11.token_uri selects token=t" profile-token.conf
sed 's/name = "tokens"/name = "release"/' signing.conf > profile-dup.conf
refuse "profile-dup.conf:11: setting 'signing.profiles.[1].name': 'release' is also the name of signing.profiles.[0]: names must be unique" profile-dup.conf
sed 's/name = "tokens"/name = "Tokens"/' signing.conf > profile-name.conf
refuse "profile-name.conf:11: setting 'signing.profiles.[1].name': 'Tokens': must be 1 to 32 characters of a-z 0-9 . _ -" profile-name.conf
sed 's/formats = \[ "jws" \]; typ = "at+jwt";/formats = [ "jws" ];/' signing.conf > profile-typ.conf
refuse "profile-typ.conf:11: setting 'signing.profiles.[1].typ': required with format jws" profile-typ.conf
sed 's/typ = "at+jwt"/typ = "credsign-cert+jwt"/' signing.conf > profile-credsign-typ.conf
refuse "profile-credsign-typ.conf:11: setting 'signing.profiles.[1].typ': the typ prefix \"credsign-\"" profile-credsign-typ.conf
# RFC 7515 4.1.9: a typ may omit "application/", so the prefix disguises nothing
sed 's/typ = "at+jwt"/typ = "Application\/CREDSIGN-cert+jwt"/' signing.conf > profile-app-typ.conf
refuse "profile-app-typ.conf:11: setting 'signing.profiles.[1].typ': the typ prefix \"credsign-\" (with or without \"application/\") is the appliance's own" profile-app-typ.conf
sed 's/typ = "at+jwt"/typ = "application\/at+jwt"/' signing.conf > profile-app-ok.conf
"$credsignd" --offline --check-config profile-app-ok.conf > out.txt 2> err.txt || fail "typ application/at+jwt refused"
sed 's/ payload_types = \[ "application\/vnd.in-toto+json" \];//' signing.conf > profile-pt.conf
refuse "profile-pt.conf:9: setting 'signing.profiles.[0].payload_types': required with format dsse" profile-pt.conf
sed 's/formats = \[ "jws" \]/formats = [ "jws", "cose" ]/' signing.conf > profile-format.conf
refuse "profile-format.conf:11: setting 'signing.profiles.[1].formats': element 2 ('cose'): unknown format (jws, dsse or digest)" profile-format.conf
sed 's/formats = \[ "jws" \]/formats = [ "jws", "jws" ]/' signing.conf > profile-repeat.conf
refuse "profile-repeat.conf:11: setting 'signing.profiles.[1].formats': element 2 ('jws'): repeated" profile-repeat.conf
sed 's/formats = \[ "jws" \]; typ = "at+jwt";/formats = [ ];/' signing.conf > profile-empty.conf
refuse "profile-empty.conf:11: setting 'signing.profiles.[1].formats': must not be empty" profile-empty.conf
sed 's/max_request_bytes = 1048576;/max_request_bytes = 65536;/' signing.conf > profile-fit.conf
refuse "profile-fit.conf:9: setting 'signing.profiles.[0].max_payload_bytes': 65536 bytes do not fit signing.max_request_bytes (65536)" profile-fit.conf
sed 's/profiles = \[ "release" \]; rate = 10;/profiles = [ "release", "nightly" ];/' signing.conf > grant-profile.conf
refuse "grant-profile.conf:16: setting 'access.grants.[0].profiles': element 2: unknown profile 'nightly' (not in signing.profiles)" grant-profile.conf
sed 's/profiles = \[ "release" \]; rate = 10;/rate = 10;/' signing.conf > grant-noprofile.conf
refuse "grant-noprofile.conf:16: setting 'access.grants.[0].profiles': required with role signer" grant-noprofile.conf
sed 's/profiles = \[ "release" \]; rate = 10;/profiles = [ "release" ]; projects = [ "p" ];/' signing.conf > grant-projects.conf
refuse "grant-projects.conf:16: setting 'access.grants.[0].projects': not allowed with role signer (a signer's scope is its profiles)" grant-projects.conf

# The example: every setting known, syntax valid. Its paths point at a
# production layout that does not exist here, so only file errors may appear.
"$credsignd" --offline --check-config "$src/conf/credsignd.conf.example" 2> example.txt || true
if grep -v -E "is not readable|PIN file|is not writable|no such user|no such group|configuration invalid" example.txt; then
  echo "FAIL: the example has errors other than missing files"; exit 1
fi
# tls.groups: known names only, none twice, no X25519/X448 with the FIPS provider
printf '%s\n' 'tls = { cert = "cert.pem"; key = "key.pem"; ca = "ca.pem"; groups = "P-256:ffdhe3072"; };' \
  'pkcs11 = { module = "module.so"; token_uri = "pkcs11:token=t"; pin_file = "user.pin"; signing_key = "pkcs11:object=k"; };' \
  'server = { allow_root = true; };' > groups.conf
"$credsignd" --offline --check-config groups.conf > out.txt 2> err.txt || fail "tls.groups P-256:ffdhe3072 refused"
sed 's/P-256:ffdhe3072/P-256:brainpool/' groups.conf > groups-bad.conf
refuse "groups-bad.conf:1: setting 'tls.groups': unknown group 'brainpool'" groups-bad.conf
sed 's/P-256:ffdhe3072/P-256:p-256/' groups.conf > groups-twice.conf
refuse "groups-twice.conf:1: setting 'tls.groups': group 'p-256' is listed twice" groups-twice.conf
sed 's/P-256:ffdhe3072/P-256::X25519/' groups.conf > groups-empty.conf
refuse "groups-empty.conf:1: setting 'tls.groups': 'P-256::X25519': a list of group names" groups-empty.conf
{ sed 's/P-256:ffdhe3072/X25519:P-256/' groups.conf; echo 'crypto = { openssl_fips = true; };'; } > groups-fips.conf
refuse "groups-fips.conf:1: setting 'tls.groups': X25519 is not FIPS-approved (crypto.openssl_fips" groups-fips.conf
{ sed 's/P-256:ffdhe3072/X448:P-256/' groups.conf; echo 'crypto = { profile = "fips"; };'; } > groups-profile.conf
refuse "groups-profile.conf:1: setting 'tls.groups': X448 is not FIPS-approved (crypto.profile \"fips\")" groups-profile.conf
{ cat groups.conf; echo 'crypto = { profile = "fips"; };'; } > profile-fips.conf
"$credsignd" --offline --check-config profile-fips.conf > out.txt 2> err.txt || fail "crypto.profile fips refused"
{ cat groups.conf; echo 'crypto = { profile = "nsa"; };'; } > profile-bad.conf
refuse "profile-bad.conf:4: setting 'crypto.profile': 'nsa': must be \"default\" or \"fips\"" profile-bad.conf

# As root, with server.user: what the network process's account must
# reach, checked from the modes as it would reach it (here nobody; this
# directory is root's alone): the store's directory writable, the
# configuration (read again at SIGHUP), tls.ca and the presets readable.
# Each problem names the setting, the file, the user and the fix, and the
# fixes given make the configuration valid.
if [ "$(id -u)" = 0 ] && id nobody > /dev/null 2>&1; then
  nogroup=$(id -gn nobody)
  mkdir -p data
  cat > acct.conf <<CONF
tls = { cert = "cert.pem"; key = "key.pem"; ca = "ca.pem"; };
pkcs11 = { module = "module.so"; token_uri = "pkcs11:token=t"; pin_file = "user.pin";
           signing_key = "pkcs11:object=k"; };
server = { user = "nobody"; presets_file = "presets.conf"; };
store = { path = "$tmp/data/credsign.db"; };
CONF
  refuse "acct.conf:5: setting 'store.path': $tmp/data/credsign.db: directory $tmp is not searchable by user nobody (uid $(id -u nobody)), which the network process runs as (server.user) and which writes the store: chgrp $nogroup $tmp && chmod g+x $tmp" acct.conf
  refuse "acct.conf:4: setting 'server.user': $tmp/acct.conf: directory $tmp is not searchable by user nobody" acct.conf
  refuse "acct.conf:1: setting 'tls.ca': $tmp/ca.pem: directory $tmp is not searchable" acct.conf
  refuse "acct.conf:4: setting 'server.presets_file': $tmp/presets.conf: directory $tmp is not searchable" acct.conf
  grep "configuration valid" out.txt && fail "acct.conf said valid"
  chmod 711 "$tmp"
  refuse "acct.conf:1: setting 'tls.ca': $tmp/ca.pem is not readable by user nobody (uid $(id -u nobody)), which the network process runs as (server.user) and which reads it again at each SIGHUP: chgrp $nogroup $tmp/ca.pem && chmod 640 $tmp/ca.pem" acct.conf
  refuse "acct.conf:5: setting 'store.path': $tmp/data/credsign.db: $tmp/data is not writable by user nobody (uid $(id -u nobody)), which the network process runs as (server.user) and which writes the store: chown -R nobody:$nogroup $tmp/data && chmod 700 $tmp/data" acct.conf
  grep -c "setting '" err.txt | grep -qx 4 || fail "not 4 problems (store, configuration, tls.ca, presets)"
  # the fixes given, as given
  sed -n "s/.*: \(ch[a-z]* .* && chmod [0-9g+x]* [^ ]*\)\$/\1/p" err.txt > fixes.sh
  [ "$(wc -l < fixes.sh)" = 4 ] || fail "not 4 fixes: $(cat fixes.sh)"
  sh -e fixes.sh || fail "the fixes do not run"
  "$credsignd" --offline --check-config acct.conf > out.txt 2> err.txt || fail "still refused after the fixes given"
  grep -q "configuration valid" out.txt || fail "acct.conf not valid after the fixes"
  chmod 700 "$tmp"
fi

for s in listen public_base_url node_id workers max_connections max_body_bytes max_header_bytes timeout_ms presets_file wordlist_file cert key ca crl crl_check verify_depth groups profile module \
         token_uri pin_file sessions signing_key validation program openssl_fips path level format checkpoint_entries checkpoint_seconds write_timeout_ms retention_days syslog \
         grants public max_request_bytes batch_max profiles name formats typ payload_types max_payload_bytes iss aud \
         lifetime_seconds store_payload; do
  grep -q "^ *$s = " "$src/conf/credsignd.conf.example" || { echo "FAIL: example lacks $s"; exit 1; }
done
echo "check_config: ok"
