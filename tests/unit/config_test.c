/*
 * config_test: credsignd.conf loading. A good file loads with defaults and
 * resolved paths; each bad file in the table is rejected with the expected
 * FILE:LINE: setting 'x.y': reason message; several errors are all reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "config.h"
#include "officer_pki.h"
#include "store_target.h"
#include "test_support.h"

static char dir[512];

/* The good file, one setting per line; the table below edits lines of it. */
static const char *const good[] = {
	/* 1 */ "server = {",
	/* 2 */ "  listen = \"127.0.0.1:8443\";",
	/* 3 */ "  public_base_url = \"https://credsign.test:8443/\";",
	/* 4 */ "  node_id = \"test-1\";",
	/* 5 */ "};",
	/* 6 */ "tls = {",
	/* 7 */ "  cert = \"cert.pem\";",
	/* 8 */ "  key = \"key.pem\";",
	/* 9 */ "  ca = \"ca.pem\";",
	/* 10 */ "  crl = \"crl.pem\";",
	/* 11 */ "  crl_check = true;",
	/* 12 */ "  verify_depth = 3;",
	/* 13 */ "};",
	/* 14 */ "pkcs11 = {",
	/* 15 */ "  module = \"module.so\";",
	/* 16 */ "  token_uri = \"pkcs11:token=credsign\";",
	/* 17 */ "  pin_file = \"user.pin\";",
	/* 18 */ "  sessions = 8;",
	/* 19 */ "  signing_key = \"pkcs11:token=credsign;object=es256\";",
	/* 20 */ "  validation = { program = \"FIPS 140-3\"; certificate = \"4745\"; module = \"Test HSM\"; "
		 "level = 3; hardware_version = \"2.06\"; firmware_version = \"2.6\"; };",
	/* 21 */ "};",
	/* 22 */ "store = {",
	/* 23 */ "  path = \"data/credsign.db\";",
	/* 24 */ "};",
	/* 25 */ "log = {",
	/* 26 */ "  level = \"debug\";",
	/* 27 */ "  format = \"json\";",
	/* 28 */ "};",
};
#define GOOD_LINES (int)(sizeof(good) / sizeof(good[0]))

typedef struct {
	int first, last;       /* lines of `good` replaced (1-based), 0 = none */
	const char *text;      /* replacement ("" deletes) */
	int line;              /* expected line in the message (0 = no line) */
	const char *setting;   /* expected setting name, NULL for syntax errors */
	const char *reason;    /* expected substring of the reason */
} bad_case;

/* the start of a validation group that needs only its versions */
#define V "  validation = { program = \"FIPS 140-3\"; certificate = \"4745\"; module = \"m\"; level = 3; "
/* the start of an access group with one grant that has its identity */
#define ID "spiffe://credsign.test/ci-deployer"
#define G "access = { grants = ({ identity = \"" ID "\"; "
/* ceremony (ceremony.h): an officer CA and officers of officer_pki.h */
#define OCA "officer_ca = \"pki/officer-ca.pem\"; "
#define OFF(name, file) "{ name = \"" name "\"; certificate = \"pki/officers/" file ".pem\"; }"
#define OFFS "officers = ( " OFF("officer-a", "officer-a") ", " OFF("officer-b", "officer-b") ", " \
	OFF("officer-c", "officer-c") " ); "

/* signing.profiles: one profile (its members given), a key of its own */
#define SIGNING(members) "signing = { profiles = ({ " members " }); };"
#define PK "key = \"pkcs11:token=credsign;object=es256-release-1\"; "
#define JWS "formats = [\"jws\"]; typ = \"release+jwt\"; "
#define TYP65 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define PT4(x) "\"" x "1\", \"" x "2\", \"" x "3\", \"" x "4\""
#define PT16(x) PT4(x "a") ", " PT4(x "b") ", " PT4(x "c") ", " PT4(x "d")
#define PT17 PT16("t") ", \"t17\""
#define PT33 PT16("t") ", " PT16("u") ", \"t33\""

static const bad_case bad[] = {
	{7, 7, "  cert == \"cert.pem\";", 7, NULL, "syntax error"},
	{29, 29, "bogus = 1;", 29, "bogus", "unknown setting"},
	{8, 7, "  certificate = \"cert.pem\";", 8, "tls.certificate", "unknown setting"},
	{18, 18, "  sessions = \"four\";", 18, "pkcs11.sessions", "expected an integer, got a string"},
	{18, 18, "  sessions = 0;", 18, "pkcs11.sessions", "0 is out of range 1..64"},
	{18, 18, "  sessions = 65;", 18, "pkcs11.sessions", "65 is out of range 1..64"},
	{12, 12, "  verify_depth = 4.5;", 12, "tls.verify_depth", "expected an integer, got a float"},
	{11, 11, "  crl_check = \"yes\";", 11, "tls.crl_check", "expected a boolean"},
	{9, 9, "", 6, "tls.ca", "required setting missing"},
	{14, 21, "", 0, "pkcs11", "required group missing"},
	{7, 7, "  cert = \"missing.pem\";", 7, "tls.cert", "is not readable: No such file or directory"},
	{17, 17, "  pin_file = \"open.pin\";", 17, "pkcs11.pin_file", "group or others have access (mode 0644): chmod 600 "},
	{16, 16, "  token_uri = \"pkcs11:token=%zz\";", 16, "pkcs11.token_uri", "invalid pkcs11: URI"},
	{16, 16, "  token_uri = \"token=credsign\";", 16, "pkcs11.token_uri", "not a pkcs11: URI"},
	{16, 16, "  token_uri = \"pkcs11:token=credsign;object=k\";", 16, "pkcs11.token_uri",
	 "token URI must not name an object"},
	{19, 19, "  signing_key = \"pkcs11:token=credsign\";", 19, "pkcs11.signing_key",
	 "must name the key with object= or id="},
	{19, 19, "  signing_key = \"pkcs11:object=k?pin-value=1234\";", 19, "pkcs11.signing_key",
	 "PINs must not appear in the URI"},
	{2, 2, "  listen = \"127.0.0.1:99999\";", 2, "server.listen", "port must be 1 to 65535"},
	{2, 2, "  listen = \"8443\";", 2, "server.listen", "expected HOST:PORT"},
	{3, 3, "  public_base_url = \"http://credsign.test\";", 3, "server.public_base_url",
	 "must be an https:// URL"},
	{4, 4, "  node_id = \"node one\";", 4, "server.node_id", "A-Z a-z 0-9"},
	{26, 26, "  level = \"verbose\";", 26, "log.level", "must be one of debug, info, warn, error"},
	{27, 27, "  format = \"xml\";", 27, "log.format", "must be logfmt or json"},
	{10, 10, "", 11, "tls.crl_check", "requires tls.crl"},
	{6, 13, "tls = 5;", 6, "tls", "expected a group"},
	{23, 23, "  path = \"no-such-dir/credsign.db\";", 23, "store.path", "is not writable"},
	/* no PIN source is not an error (a token that needs no login); see
	 * test_module_by_path_with_init_args */
	{15, 15, "  module = \"softhsm2\";\n  init_args = \"x\";", 16, "pkcs11.init_args",
	 "only for a module given by path; the p11-kit module 'softhsm2' takes its arguments from x-init-reserved"},
	{15, 15, "  module = \"p11-kit-proxy.so\";", 15, "pkcs11.module",
	 "p11-kit's proxy module, which p11-kit does not load as a module: give the registered module's name"},
	{15, 15, "  module = \"module.so\"; init_args = \"\";", 15, "pkcs11.init_args", "must not be empty"},
	{15, 15, "  module = \"/nonexistent/libpkcs11.so\";", 15, "pkcs11.module", "is not readable"},
	/* pkcs11.validation: a checked group, never free text */
	{20, 20, "  validation = \"FIPS 140-3 certificate #0000 (test)\";", 20, "pkcs11.validation",
	 "free text is no longer accepted; declare the validation as a group: validation = { program = \"none\"; }"},
	{20, 20, "  validation = \"\";", 20, "pkcs11.validation", "free text is no longer accepted"},
	{20, 20, "  validation = { program = \"FIPS 140\"; };", 20, "pkcs11.validation.program",
	 "must be \"FIPS 140-3\", \"FIPS 140-2\" or \"none\""},
	{20, 20, "  validation = { certificate = \"4745\"; };", 20, "pkcs11.validation.program",
	 "required setting missing"},
	{20, 20, "  validation = { program = \"none\";\n certificate = \"4745\"; };", 21,
	 "pkcs11.validation.certificate", "not allowed with program \"none\""},
	{20, 20, V "hardware_version = \"2.6\"; };", 20, "pkcs11.validation.firmware_version",
	 "required with program \"FIPS 140-3\""},
	{20, 20, "  validation = { program = \"FIPS 140-2\"; module = \"m\"; level = 2; hardware_version = \"1.0\"; "
		 "firmware_version = \"1.0\"; };", 20, "pkcs11.validation.certificate",
	 "required with program \"FIPS 140-2\""},
	{20, 20, V "hardware_version = \"2.6.1\"; firmware_version = \"2.6\"; };", 20,
	 "pkcs11.validation.hardware_version", "must be MAJOR.MINOR"},
	{20, 20, V "hardware_version = \"2.6\"; firmware_version = \"256.0\"; };", 20,
	 "pkcs11.validation.firmware_version", "each 0..255"},
	{20, 20, V "hardware_version = \"2.6\"; firmware_version = \"2.6\"; library_version = \"v2\"; };", 20,
	 "pkcs11.validation.library_version", "must be MAJOR.MINOR"},
	{20, 20, "  validation = { program = \"FIPS 140-3\"; certificate = \"4745\"; module = \"m\"; level = 5; "
		 "hardware_version = \"2.6\"; firmware_version = \"2.6\"; };", 20, "pkcs11.validation.level",
	 "5 is out of range 1..4"},
	{20, 20, "  validation = { program = \"FIPS 140-3\"; certificate = \"#0000\"; module = \"m\"; level = 3; "
		 "hardware_version = \"2.6\"; firmware_version = \"2.6\"; };", 20, "pkcs11.validation.certificate",
	 "must be the CMVP certificate number"},
	{20, 20, "  validation = { program = \"FIPS 140-3\"; certificate = \"0000\"; module = \"m\"; level = 3; "
		 "hardware_version = \"2.6\"; firmware_version = \"2.6\"; };", 20, "pkcs11.validation.certificate",
	 "must be the CMVP certificate number"},
	{20, 20, "  validation = { program = \"none\"; colour = 1; };", 20, "pkcs11.validation.colour",
	 "unknown setting"},
	{29, 29, "crypto = { openssl_fips = \"yes\"; };", 29, "crypto.openssl_fips", "expected a boolean"},
	{8, 8, "  key = \"pkcs11:token=credsign\";", 8, "tls.key", "must name the key"},
	{29, 29, "audit = { retention_days = 30; };", 29, "audit.retention_days", "30 is out of range 365..36500"},
	/* replaced by access.grants: refused with what to write instead */
	{29, 29, "audit = { readers = [ \"spiffe://credsign.test/auditor\" ]; };", 29, "audit.readers",
	 "replaced by access.grants: give each identity listed here a grant of role auditor, e.g. access = { "
	 "grants = ( { identity = \"spiffe://credsign.test/auditor\"; role = \"auditor\"; projects = [ \"*\" ]; } ); };"},
	{29, 29, "metrics = { readers = [ \"spiffe://credsign.test/operator\" ]; };", 29, "metrics.readers",
	 "give each identity listed here a grant of role operator, e.g. access = { grants = ( { identity = "
	 "\"spiffe://credsign.test/operator\"; role = \"operator\"; } ); };"},
	{29, 29, "certificates = { public = 1; };", 29, "certificates.public", "expected a boolean"},
	{24, 23, "  session_retention_seconds = 30;", 24, "store.session_retention_seconds",
	 "30 is out of range 60..31536000"},
	/* access.grants (access.h): each grant checked, named by its index */
	{29, 29, G "role = \"admin\"; }); };", 29, "access.grants.[0].role",
	 "must be \"generator\", \"auditor\", \"operator\" or \"signer\""},
	{29, 29, "access = { grants = ({ identity = \"" ID "\"; }); };", 29, "access.grants.[0].role",
	 "required setting missing"},
	{29, 29, "access = { grants = ({ identity = \"\"; role = \"operator\"; }); };", 29,
	 "access.grants.[0].identity", "must not be empty"},
	{29, 29, "access = { grants = ({ role = \"operator\"; }); };", 29, "access.grants.[0].identity",
	 "required setting missing"},
	{29, 29, "access = { grants = ({ identity = \"spiffe://t/*/api\"; role = \"operator\"; }); };", 29,
	 "access.grants.[0].identity", "'*' is allowed only as a trailing \"/*\" after a prefix"},
	{29, 29, "access = { grants = ({ identity = \"spiffe://t/ns*\"; role = \"operator\"; }); };", 29,
	 "access.grants.[0].identity", "'*' is allowed only as a trailing"},
	{29, 29, "access = { grants = ({ identity = \"/*\"; role = \"operator\"; }); };", 29,
	 "access.grants.[0].identity", "'*' is allowed only as a trailing"},
	{29, 29, "access = { grants = ({ identity = \"*\"; role = \"operator\"; }); };", 29,
	 "access.grants.[0].identity", "'*' is allowed only as a trailing"},
	{29, 29, "access = { grants = ({ identity = 7; role = \"operator\"; }); };", 29,
	 "access.grants.[0].identity", "expected a string, got an integer"},
	{29, 29, G "role = \"generator\"; environments = [\"*\"]; }); };", 29, "access.grants.[0].projects",
	 "required with role generator ([ \"*\" ] for every project)"},
	{29, 29, G "role = \"generator\"; projects = [\"web\"]; }); };", 29, "access.grants.[0].environments",
	 "required with role generator"},
	{29, 29, G "role = \"auditor\"; }); };", 29, "access.grants.[0].projects", "required with role auditor"},
	{29, 29, G "role = \"operator\"; projects = [\"web\"]; }); };", 29, "access.grants.[0].projects",
	 "not allowed with role operator"},
	{29, 29, G "role = \"auditor\"; projects = [\"*\"]; environments = [\"*\"]; }); };", 29,
	 "access.grants.[0].environments", "not allowed with role auditor (an auditor's scope is its projects)"},
	{29, 29, G "role = \"auditor\"; projects = [\"*\"]; presets = [\"soc2\"]; }); };", 29,
	 "access.grants.[0].presets", "not allowed with role auditor"},
	{29, 29, G "role = \"auditor\"; projects = []; }); };", 29, "access.grants.[0].projects",
	 "must not be empty ([ \"*\" ] for every project)"},
	{29, 29, G "role = \"auditor\"; projects = [\"*\", \"web\"]; }); };", 29, "access.grants.[0].projects",
	 "element 1: \"*\" covers every value and must be the only element"},
	{29, 29, G "role = \"auditor\"; projects = [\"web\", \"pay*\"]; }); };", 29, "access.grants.[0].projects",
	 "element 2: '*' only stands alone"},
	{29, 29, G "role = \"auditor\"; projects = \"web\"; }); };", 29, "access.grants.[0].projects",
	 "expected a list of strings"},
	{29, 29, G "role = \"operator\"; rate = 0; }); };", 29, "access.grants.[0].rate",
	 "0 is out of range: at least one request a day (0.00001157), at most 100000 requests per second"},
	{29, 29, G "role = \"operator\"; rate = 1e-12; }); };", 29, "access.grants.[0].rate", "1e-12 is out of range"},
	{29, 29, G "role = \"operator\"; rate = -2.5; }); };", 29, "access.grants.[0].rate", "-2.5 is out of range"},
	{29, 29, G "role = \"operator\"; rate = 100000.5; }); };", 29, "access.grants.[0].rate", "out of range"},
	{29, 29, G "role = \"operator\"; rate = \"fast\"; }); };", 29, "access.grants.[0].rate",
	 "expected a number (requests per second), got a string"},
	{29, 29, G "role = \"operator\"; rate = 5; burst = 0; }); };", 29, "access.grants.[0].burst",
	 "0 is out of range 1..100000"},
	{29, 29, G "role = \"operator\"; rate = 5; burst = 2.5; }); };", 29, "access.grants.[0].burst",
	 "expected an integer, got a float"},
	{29, 29, G "role = \"operator\"; burst = 10; }); };", 29, "access.grants.[0].burst", "requires rate"},
	{29, 29, G "role = \"operator\"; colour = \"blue\"; }); };", 29, "access.grants.[0].colour",
	 "unknown setting"},
	{29, 29, "access = { grants = { identity = \"" ID "\"; role = \"operator\"; }; };", 29, "access.grants",
	 "expected a list of groups ( { identity = \"...\"; role = \"...\"; ... }, ... ), got a group"},
	{29, 29, "access = { grants = (\"" ID "\"); };", 29, "access.grants.[0]", "expected a group"},
	{29, 29, "access = { grant = (); };", 29, "access.grant", "unknown setting"},
	{29, 29, G "role = \"operator\"; },\n  { identity = \"" ID "\"; role = \"root\"; }); };", 30,
	 "access.grants.[1].role", "must be \"generator\""},
	/* signing.profiles (issue 15): each refusal at its line */
	{29, 29, SIGNING("name = \"Release\"; " PK JWS), 29, "signing.profiles.[0].name",
	 "'Release': must be 1 to 32 characters of a-z 0-9 . _ -, starting with a-z or 0-9"},
	{29, 29, SIGNING("name = \"-release\"; " PK JWS), 29, "signing.profiles.[0].name", "starting with a-z or 0-9"},
	{29, 29, SIGNING("name = \"abcdefghijklmnopqrstuvwxyz0123456\"; " PK JWS), 29, "signing.profiles.[0].name",
	 "must be 1 to 32 characters"},
	{29, 29, SIGNING("name = \"re lease\"; " PK JWS), 29, "signing.profiles.[0].name", "must be 1 to 32"},
	{29, 29, SIGNING(PK JWS), 29, "signing.profiles.[0].name", "required setting missing"},
	{29, 29, SIGNING("name = 7; " PK JWS), 29, "signing.profiles.[0].name", "expected a string, got an integer"},
	{29, 29, "signing = { profiles = ({ name = \"release\"; " PK JWS "},\n  { name = \"release\"; "
		 "key = \"pkcs11:object=es256-release-2\"; " JWS "}); };", 30, "signing.profiles.[1].name",
	 "'release' is also the name of signing.profiles.[0]: names must be unique"},
	{29, 29, SIGNING("name = \"release\"; key = \"pkcs11:token=credsign;object=es256\"; " JWS), 29,
	 "signing.profiles.[0].key",
	 "pkcs11:token=credsign;object=es256 is pkcs11.signing_key, the certificate-signing key: a profile needs a "
	 "key of its own"},
	{29, 29, "signing = { profiles = ({ name = \"release\"; " PK JWS "},\n  { name = \"nightly\"; " PK JWS
		 "}); };", 30, "signing.profiles.[1].key",
	 "pkcs11:token=credsign;object=es256-release-1 is also the key of signing.profiles.[0]"},
	{29, 29, SIGNING("name = \"release\"; " JWS), 29, "signing.profiles.[0].key", "required setting missing"},
	{29, 29, SIGNING("name = \"release\"; key = \"es256-release-1\"; " JWS), 29, "signing.profiles.[0].key",
	 "not a pkcs11: URI"},
	{29, 29, SIGNING("name = \"release\"; key = \"pkcs11:token=credsign\"; " JWS), 29,
	 "signing.profiles.[0].key", "must name the key with object= or id="},
	{29, 29, SIGNING("name = \"release\"; key = \"pkcs11:token=other;object=k\"; " JWS), 29,
	 "signing.profiles.[0].key", "names token=other, but pkcs11.token_uri selects token=credsign"},
	{29, 29, SIGNING("name = \"release\"; key = \"pkcs11:object=k?pin-value=1\"; " JWS), 29,
	 "signing.profiles.[0].key", "PINs must not appear in the URI"},
	{29, 29, SIGNING("name = \"release\"; " PK), 29, "signing.profiles.[0].formats", "required setting missing"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [];"), 29, "signing.profiles.[0].formats",
	 "must not be empty"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jwt\"];"), 29, "signing.profiles.[0].formats",
	 "element 1 ('jwt'): unknown format (jws, dsse or digest)"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"digest\", \"digest\"];"), 29,
	 "signing.profiles.[0].formats", "element 2 ('digest'): repeated"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = \"jws\";"), 29, "signing.profiles.[0].formats",
	 "expected a list of strings"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jws\"];"), 29, "signing.profiles.[0].typ",
	 "required with format jws"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"digest\"]; typ = \"x+jwt\";"), 29,
	 "signing.profiles.[0].typ", "only with format jws"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jws\"]; typ = \"credsign-cert+jwt\";"), 29,
	 "signing.profiles.[0].typ",
	 "the typ prefix \"credsign-\" (with or without \"application/\") is the appliance's own"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jws\"]; typ = \"CredSign-x\";"), 29,
	 "signing.profiles.[0].typ", "the typ prefix \"credsign-\""},
	/* RFC 7515 4.1.9: "application/" may be omitted, so it is no disguise */
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jws\"]; typ = \"application/credsign-cert+jwt\";"),
	 29, "signing.profiles.[0].typ", "the typ prefix \"credsign-\" (with or without \"application/\")"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jws\"]; typ = \"APPLICATION/CredSign-x\";"), 29,
	 "signing.profiles.[0].typ", "the typ prefix \"credsign-\""},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jws\"]; typ = \"release jwt\";"), 29,
	 "signing.profiles.[0].typ", "must be 1 to 64 characters of A-Z a-z 0-9"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"jws\"]; typ = \"" TYP65 "\";"), 29,
	 "signing.profiles.[0].typ", "must be 1 to 64 characters"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"dsse\"];"), 29, "signing.profiles.[0].payload_types",
	 "required with format dsse"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "payload_types = [\"a/b\"];"), 29,
	 "signing.profiles.[0].payload_types", "only with format dsse"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"dsse\"]; payload_types = [];"), 29,
	 "signing.profiles.[0].payload_types", "must not be empty"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"dsse\"]; payload_types = [\"a/b\", \"a/b\"];"),
	 29, "signing.profiles.[0].payload_types", "element 2 ('a/b'): repeated"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"dsse\"]; payload_types = [\"a b\"];"), 29,
	 "signing.profiles.[0].payload_types", "element 1 ('a b'): must be 1 to 128 printable ASCII characters"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"dsse\"]; payload_types = [\"\"];"), 29,
	 "signing.profiles.[0].payload_types", "element 1 (''): must be 1 to 128"},
	{29, 29, SIGNING("name = \"release\"; " PK "formats = [\"dsse\"]; payload_types = [ " PT33 " ];"), 29,
	 "signing.profiles.[0].payload_types", "33 elements: at most 32"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "max_payload_bytes = 0;"), 29,
	 "signing.profiles.[0].max_payload_bytes", "0 is out of range 1..16777216"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "max_payload_bytes = 16777217;"), 29,
	 "signing.profiles.[0].max_payload_bytes", "16777217 is out of range 1..16777216"},
	/* the payload must fit a request: 4 * ceil(n / 3) + 4096 <= max_request_bytes */
	{29, 29, SIGNING("name = \"release\"; " PK JWS "max_payload_bytes = 1048576;"), 29,
	 "signing.profiles.[0].max_payload_bytes",
	 "1048576 bytes do not fit signing.max_request_bytes (1048576): a payload this large takes 1402200 bytes"},
	{29, 29, "signing = { max_request_bytes = 91479;\n profiles = ({ name = \"release\"; " PK JWS "}); };", 30,
	 "signing.profiles.[0].max_payload_bytes", "65536 bytes do not fit signing.max_request_bytes (91479)"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "lifetime_seconds = -1;"), 29,
	 "signing.profiles.[0].lifetime_seconds", "-1 is out of range 0..31536000"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "lifetime_seconds = 31536001;"), 29,
	 "signing.profiles.[0].lifetime_seconds", "out of range 0..31536000"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "store_payload = \"yes\";"), 29,
	 "signing.profiles.[0].store_payload", "expected a boolean"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "iss = \"\";"), 29, "signing.profiles.[0].iss",
	 "must not be empty"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "iss = [\"https://x\"];"), 29, "signing.profiles.[0].iss",
	 "expected a string, got an array"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "aud = [];"), 29, "signing.profiles.[0].aud", "must not be empty"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "aud = [ " PT17 " ];"), 29, "signing.profiles.[0].aud",
	 "17 elements: at most 16"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "aud = [\"a\", \"a\"];"), 29, "signing.profiles.[0].aud",
	 "element 2 ('a'): repeated"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS "colour = 1;"), 29, "signing.profiles.[0].colour",
	 "unknown setting"},
	{29, 29, "signing = { profiles = { name = \"release\"; }; };", 29, "signing.profiles",
	 "expected a list of groups"},
	{29, 29, "signing = { profiles = ( \"release\" ); };", 29, "signing.profiles.[0]", "expected a group"},
	{29, 29, "signing = { max_request_bytes = 1023; };", 29, "signing.max_request_bytes",
	 "1023 is out of range 1024..16777216"},
	{29, 29, "signing = { max_request_bytes = 16777217; };", 29, "signing.max_request_bytes", "out of range"},
	/* a limit reported wrong is not held against the profiles (one complaint) */
	{29, 29, "signing = { max_request_bytes = 100; profiles = ({ name = \"release\"; " PK JWS "}); };", 29,
	 "signing.max_request_bytes", "100 is out of range 1024..16777216"},
	{29, 29, "signing = { max_request_bytes = 1024; profiles = ({ name = \"release\"; " PK JWS
		 "max_payload_bytes = 0; }); };", 29, "signing.profiles.[0].max_payload_bytes", "0 is out of range"},
	{29, 29, "signing = { batch_max = 0; };", 29, "signing.batch_max", "0 is out of range 1..1000"},
	{29, 29, "signing = { batch_max = 1001; };", 29, "signing.batch_max", "1001 is out of range 1..1000"},
	{29, 29, "signing = { colour = 1; };", 29, "signing.colour", "unknown setting"},
	{29, 29, "signing = 1;", 29, "signing", "expected a group"},
	/* grants: signer needs profiles and takes nothing else; auditor may add them */
	{29, 29, G "role = \"signer\"; }); };", 29, "access.grants.[0].profiles", "required with role signer"},
	{29, 29, G "role = \"signer\"; profiles = [\"*\"]; projects = [\"web\"]; }); };", 29,
	 "access.grants.[0].projects", "not allowed with role signer (a signer's scope is its profiles)"},
	{29, 29, G "role = \"signer\"; profiles = [\"*\"]; environments = [\"*\"]; }); };", 29,
	 "access.grants.[0].environments", "not allowed with role signer"},
	{29, 29, G "role = \"signer\"; profiles = [\"*\"]; presets = [\"soc2\"]; }); };", 29,
	 "access.grants.[0].presets", "not allowed with role signer"},
	{29, 29, G "role = \"signer\"; profiles = []; }); };", 29, "access.grants.[0].profiles",
	 "must not be empty ([ \"*\" ] for every profile)"},
	{29, 29, G "role = \"signer\"; profiles = [\"*\", \"release\"]; }); };", 29, "access.grants.[0].profiles",
	 "\"*\" covers every value and must be the only element"},
	{29, 29, G "role = \"generator\"; projects = [\"*\"]; environments = [\"*\"]; profiles = [\"*\"]; }); };",
	 29, "access.grants.[0].profiles", "not allowed with role generator"},
	{29, 29, G "role = \"operator\"; profiles = [\"*\"]; }); };", 29, "access.grants.[0].profiles",
	 "not allowed with role operator"},
	{29, 29, G "role = \"signer\"; profiles = [\"release\"]; }); };", 29, "access.grants.[0].profiles",
	 "element 1: unknown profile 'release' (signing.profiles defines none)"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS) "\n" G "role = \"signer\"; profiles = [\"release\", "
		 "\"nightly\"]; }); };", 30, "access.grants.[0].profiles",
	 "element 2: unknown profile 'nightly' (not in signing.profiles)"},
	{29, 29, SIGNING("name = \"release\"; " PK JWS) "\n" G "role = \"auditor\"; projects = [\"*\"]; "
		 "profiles = [\"Release\"]; }); };", 30, "access.grants.[0].profiles",
	 "element 1: unknown profile 'Release'"},
	/* ceremony: dual control */
	{29, 29, "ceremony = { " OCA "quorum = 1; " OFFS "};", 29, "ceremony.quorum",
	 "1 is below 2: activate, retire, compromise, destroy and purge need at least two officers (dual control)"},
	{29, 29, "ceremony = { " OCA "quorum = 4; " OFFS "};", 29, "ceremony.quorum",
	 "4 officers are needed but ceremony.officers lists 3: no ceremony could complete"},
	{29, 29, "ceremony = { " OCA "officers = (); };", 29, "ceremony.quorum",
	 "2 officers are needed but ceremony.officers lists 0"},
	{29, 29, "ceremony = { " OCA "quorum = 0; " OFFS "};", 29, "ceremony.quorum", "0 is out of range 1..64"},
	{29, 29, "ceremony = { " OCA "revoke_quorum = 0; " OFFS "};", 29, "ceremony.revoke_quorum",
	 "0 is out of range 1..64"},
	{29, 29, "ceremony = { " OCA "revoke_quorum = 4; " OFFS "};", 29, "ceremony.revoke_quorum",
	 "4 officers are needed but ceremony.officers lists 3"},
	{29, 29, "ceremony = { " OCA "expiry_minutes = 0; " OFFS "};", 29, "ceremony.expiry_minutes",
	 "0 is out of range 1..10080"},
	{29, 29, "ceremony = { " OCA "expiry_minutes = 10081; " OFFS "};", 29, "ceremony.expiry_minutes",
	 "10081 is out of range 1..10080"},
	{29, 29, "ceremony = { " OFFS "};", 29, "ceremony.officer_ca", "required setting missing"},
	{29, 29, "ceremony = { " OCA "};", 29, "ceremony.officers", "required setting missing"},
	{29, 29, "ceremony = { " OCA OFFS "colour = 1; };", 29, "ceremony.colour", "unknown setting"},
	{29, 29, "ceremony = 1;", 29, "ceremony", "expected a group"},
	{29, 29, "ceremony = { officer_ca = \"ca.pem\"; " OFFS "};", 29, "ceremony.officer_ca",
	 "must hold exactly one PEM certificate (the officers' CA), found 0"},
	{29, 29, "ceremony = { officer_ca = \"pki/officers/officer-a.pem\"; " OFFS "};", 29, "ceremony.officer_ca",
	 "is not a CA certificate"},
	{29, 29, "ceremony = { officer_ca = \"pki/nope.pem\"; " OFFS "};", 29, "ceremony.officer_ca",
	 "is not readable: No such file or directory"},
	{29, 29, "ceremony = { " OCA "officer_crl = \"crl.pem\"; " OFFS "};", 29, "ceremony.officer_crl",
	 "is not a PEM CRL"},
	{29, 29, "ceremony = { " OCA "officer_crl = \"pki/other-crl.pem\"; " OFFS "};", 29, "ceremony.officer_crl",
	 "is not issued by ceremony.officer_ca"},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", " OFF("officer-b", "officer-b") ",\n"
	 "  " OFF("officer-c", "officer-other") " ); };",
	 30, "ceremony.officers.[2].certificate", "is not issued by ceremony.officer_ca (its issuer: /O=credsign test/CN=unrelated CA)"},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", " OFF("officer-a", "officer-b") " ); };",
	 29, "ceremony.officers.[1].name", "'officer-a' is also the name of ceremony.officers.[0]: names must be unique"},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", " OFF("officer-b", "officer-a") " ); };",
	 29, "ceremony.officers.[1].certificate", "is the certificate of ceremony.officers.[0] too"},
	/* one key under two certificates (officer-a's key re-issued): one officer, refused */
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", " OFF("officer-b", "officer-b") ",\n"
	 "  " OFF("officer-a-2027", "officer-a-2027") " ); };",
	 30, "ceremony.officers", "officer 'officer-a-2027' ("},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", " OFF("officer-b", "officer-b") ",\n"
	 "  " OFF("officer-a-2027", "officer-a-2027") " ); };",
	 30, "ceremony.officers", ") has the public key of officer 'officer-a' (ceremony.officers.[0]; key SHA256:"},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer a", "officer-a") ", " OFF("officer-b", "officer-b") " ); };",
	 29, "ceremony.officers.[0].name", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -"},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", " OFF("officer-b", "missing") " ); };",
	 29, "ceremony.officers.[1].certificate", "is not readable: No such file or directory"},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", { name = \"officer-b\"; } ); };", 29,
	 "ceremony.officers.[1].certificate", "required setting missing"},
	{29, 29,
	 "ceremony = { " OCA "officers = ( " OFF("officer-a", "officer-a") ", { name = \"b\"; certificate = "
	 "\"pki/officers/officer-b.pem\"; key = \"k\"; } ); };",
	 29, "ceremony.officers.[1].key", "unknown setting"},
	{29, 29, "ceremony = { " OCA "officers = { name = \"officer-a\"; }; };", 29, "ceremony.officers",
	 "expected a list of groups"},
	{29, 29, "ceremony = { " OCA "officers = ( \"officer-a\" ); };", 29, "ceremony.officers.[0]",
	 "expected a group"},
	/* server.user, server.group, hardening (issue 16): accounts of this machine */
	{4, 4, "  node_id = \"test-1\"; user = \"no-such-user-cs\";", 4, "server.user",
	 "no such user 'no-such-user-cs'"},
	{4, 4, "  node_id = \"test-1\"; user = \"\";", 4, "server.user", "must not be empty"},
	{4, 4, "  node_id = \"test-1\"; user = \"u234567890123456789012345678901234567890123456789012345678901234\";",
	 4, "server.user", "longer than 63 characters"},
	{4, 4, "  node_id = \"test-1\"; group = \"nogroup\";", 4, "server.group",
	 "only with server.user"},
	{4, 4, "  node_id = \"test-1\"; user = \"nobody\"; group = \"no-such-group-cs\";", 4, "server.group",
	 "no such group 'no-such-group-cs'"},
	/* the group's own problem names server.group (not server.user) */
	{4, 4, "  node_id = \"test-1\"; user = \"nobody\"; group = \"root\";", 4, "server.group",
	 "group 'root' is root's (gid 0): name an unprivileged group"},
	{4, 4, "  node_id = \"test-1\"; allow_root = \"yes\";", 4, "server.allow_root", "expected a boolean"},
	{29, 29, "hardening = { seccomp = 1; };", 29, "hardening.seccomp", "expected a boolean"},
	{29, 29, "hardening = { sandbox = true; };", 29, "hardening.sandbox", "unknown setting"},
	{29, 29, "hardening = true;", 29, "hardening", "expected a group"},
	/* store.backend and store.postgresql (issue 17) */
#define PGC0 "postgresql = { connection = \"host=db.test dbname=credsign user=n1\"; "
#define PGC PGC0 "ca_file = \"ca.pem\"; "
	{23, 23, "  backend = \"postgresql\"; " PGC0 "};", 23, "store.postgresql.ca_file",
	 "required with sslmode verify-full: the CA that issued the PostgreSQL server's certificate"},
	{23, 23, "  backend = \"postgresql\"; " PGC0 "sslmode = \"verify-ca\"; };", 23, "store.postgresql.ca_file",
	 "required with sslmode verify-ca"},
	{23, 23, "  path = \"data/credsign.db\"; backend = \"mysql\";", 23, "store.backend",
	 "must be \"sqlite\" or \"postgresql\""},
	{23, 23, "  path = \"data/credsign.db\"; backend = \"postgresql\"; " PGC "};", 23, "store.path",
	 "only with store.backend = \"sqlite\": a PostgreSQL store is reached by store.postgresql.connection"},
	{23, 23, "  path = \"data/credsign.db\"; " PGC "};", 23, "store.postgresql",
	 "only with store.backend = \"postgresql\""},
	{23, 23, "  backend = \"postgresql\";", 23, "store.postgresql",
	 "required group missing with store.backend = \"postgresql\""},
	{23, 23, "  backend = \"postgresql\"; postgresql = { sslmode = \"require\"; };", 23,
	 "store.postgresql.connection", "required setting missing with store.backend = \"postgresql\""},
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"host=db dbname\"; ca_file = \"ca.pem\"; };", 23,
	 "store.postgresql.connection", "not a libpq connection string or URI: missing \"=\" after \"dbname\""},
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"postgresql://n1:secret@db/credsign\"; ca_file = \"ca.pem\"; };",
	 23, "store.postgresql.connection", "holds a password: remove it and use password_file"},
	/* a password with a space: libpq complains about a word of it */
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"user=password_x password=ab secretcd\"; "
	 "ca_file = \"ca.pem\"; };",
	 23, "store.postgresql.connection", "not a libpq connection string or URI: missing \"=\" after \"(not shown)\""},
	/* libpq echoes the token it could not decode: never the password */
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"postgresql://n1:Top%secret%ZZ@db/credsign\"; "
	 "ca_file = \"ca.pem\"; };",
	 23, "store.postgresql.connection",
	 "not a libpq connection string or URI: invalid percent-encoded token: \"(not shown)\""},
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"host=db password='secret dbname=x\"; "
	 "ca_file = \"ca.pem\"; };",
	 23, "store.postgresql.connection", "not a libpq connection string or URI: unterminated quoted string"},
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"host=db password=secret\"; ca_file = \"ca.pem\"; };", 23,
	 "store.postgresql.connection", "holds a password"},
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"postgresql://db/x?bogus=1\"; ca_file = \"ca.pem\"; };",
	 23, "store.postgresql.connection", "not a libpq connection string or URI: invalid URI query parameter: \"(not shown)\""},
	/* libpq quotes the URI, password and all: the message leaves it out */
	{23, 23, "  backend = \"postgresql\"; postgresql = { connection = \"postgresql://n1:secret@[::1/x\"; ca_file = \"ca.pem\"; };",
	 23, "store.postgresql.connection",
	 "not a libpq connection string or URI: end of string reached when looking for matching \"]\" in IPv6 host "
	 "address in URI"},
	{23, 23, "  backend = \"postgresql\"; " PGC "sslmode = \"verify\"; };", 23, "store.postgresql.sslmode",
	 "must be one of disable, allow, prefer, require, verify-ca, verify-full"},
	{23, 23, "  backend = \"postgresql\"; " PGC "pool_size = 1; };", 23, "store.postgresql.pool_size",
	 "1 is out of range 2..1000"},
	{23, 23, "  backend = \"postgresql\"; " PGC "pool_size = 1001; };", 23, "store.postgresql.pool_size",
	 "1001 is out of range 2..1000"},
	{23, 23, "  backend = \"postgresql\"; " PGC "statement_timeout_ms = 99; };", 23,
	 "store.postgresql.statement_timeout_ms", "99 is out of range 100..600000"},
	{23, 23, "  backend = \"postgresql\"; " PGC "connect_timeout_seconds = 61; };", 23,
	 "store.postgresql.connect_timeout_seconds", "61 is out of range 1..60"},
	{23, 23, "  backend = \"postgresql\"; " PGC "node_role = \"Credsign-Node\"; };", 23,
	 "store.postgresql.node_role", "must be a PostgreSQL role name"},
	{23, 23, "  backend = \"postgresql\"; " PGC0 "ca_file = \"missing-ca.pem\"; };", 23, "store.postgresql.ca_file",
	 "is not readable: No such file or directory"},
	{23, 23, "  backend = \"postgresql\"; " PGC "password_file = \"open.pin\"; };", 23,
	 "store.postgresql.password_file", "group or others have access (mode 0644): chmod 600"},
	{23, 23, "  backend = \"postgresql\"; " PGC "password_file = \"missing.pw\"; };", 23,
	 "store.postgresql.password_file", "is not readable: No such file or directory"},
	{23, 23, "  backend = \"postgresql\"; " PGC "port = 5432; };", 23, "store.postgresql.port", "unknown setting"},
	{23, 23, "  backend = \"postgresql\"; postgresql = 5;", 23, "store.postgresql", "expected a group"},
	/* refusals of one setting's value, each at its line */
	{4, 4, "  node_id = \"node\\tone\";", 4, "server.node_id", "contains control characters"},
	{4, 4, "  node_id = \"" TYP65 "\";", 4, "server.node_id", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -"},
	{7, 7, "  cert = \"pki\";", 7, "tls.cert", "/pki' is not a regular file"},
	{2, 2, "  listen = \":8443\";", 2, "server.listen", "expected HOST:PORT"},
	{2, 2, "  listen = \"127.0.0.1:84x3\";", 2, "server.listen", "port must be 1 to 65535"},
	{2, 2, "  listen = \"127.0.0.1:\";", 2, "server.listen", "port must be 1 to 65535"},
	{3, 3, "  public_base_url = \"https://credsign.test:8443/#top\";", 3, "server.public_base_url",
	 "must not have a fragment"},
	{20, 20, V "hardware_version = \"2\"; firmware_version = \"2.6\"; };", 20, "pkcs11.validation.hardware_version",
	 "must be MAJOR.MINOR"},
	{20, 20, V "hardware_version = \"1000.1\"; firmware_version = \"2.6\"; };", 20,
	 "pkcs11.validation.hardware_version", "must be MAJOR.MINOR"},
	{20, 20, V "hardware_version = \".6\"; firmware_version = \"2.6\"; };", 20, "pkcs11.validation.hardware_version",
	 "must be MAJOR.MINOR"},
	{20, 20, "  validation = { program = \"FIPS 140-3\"; certificate = \"123456789\"; module = \"m\"; level = 3; "
		 "hardware_version = \"2.6\"; firmware_version = \"2.6\"; };", 20, "pkcs11.validation.certificate",
	 "must be the CMVP certificate number"},
	{29, 29, "policy = { effective_date = \"2025-02-29\"; };", 29, "policy.effective_date",
	 "must be a date YYYY-MM-DD that exists"},
	{29, 29, "policy = { effective_date = \"2025-1-011\"; };", 29, "policy.effective_date",
	 "must be a date YYYY-MM-DD that exists"},
	{29, 29, "inventory = { pci_password_change_days = 91; };", 29, "inventory.pci_password_change_days",
	 "91 days is longer than the 90-day maximum of PCI DSS v4.0.1 8.3.9"},
	{29, 29, "inventory = { pci_password_change_days = -1; };", 29, "inventory.pci_password_change_days",
	 "-1 is out of range"},
	{29, 29, "inventory = { due_soon_days = 0; };", 29, "inventory.due_soon_days", "0 is out of range 1..365"},
	{29, 29, "inventory = { due_soon_days = 366; };", 29, "inventory.due_soon_days", "366 is out of range 1..365"},
	{29, 29, "inventory = { due_soon = 3; };", 29, "inventory.due_soon", "unknown setting"},
	{19, 19, "  signing_key = \"pkcs11:token=credsign;object=es256?pin-source=file:user.pin\";", 19,
	 "pkcs11.signing_key", "pin-source must be file:/ABSOLUTE/PATH"},
	{16, 16, "  token_uri = \"pkcs11:token=credsign;colour=red\";", 16, "pkcs11.token_uri",
	 "pkcs11: URI has unrecognized attributes"},
	{13, 12, "  groups = \"P-256::x25519\";", 13, "tls.groups", "a list of group names separated by ':'"},
	{29, 29, G "role = \"auditor\"; projects = [\"web\\tpay\"]; }); };", 29, "access.grants.[0].projects",
	 "element 1: contains control characters"},
	{29, 29, SIGNING("name = \"release\"; key = \"pkcs11:\\tx\"; " JWS), 29, "signing.profiles.[0].key",
	 "contains control characters"},
};

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[700];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ts_write_file(path, text, mode);
}

/* Write `good` with lines first..last replaced by text; return its path. */
static void write_config(const char *name, int first, int last, const char *text, char *path,
			 size_t cap)
{
	snprintf(path, cap, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int line = 1; line <= GOOD_LINES + 1; line++) {
		if (line == first)
			fprintf(f, "%s\n", text);
		if (line >= first && line <= last)
			continue;
		if (line <= GOOD_LINES)
			fprintf(f, "%s\n", good[line - 1]);
	}
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	const char *base = getenv("CREDSIGN_TEST_TMP");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/conf-XXXXXX", base != NULL ? base : "/tmp");
	if (base != NULL)
		mkdir(base, 0700);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(dir, sizeof(dir), "%s", tmpl);
	/* fixtures: placeholders the validator only needs to be readable */
	write_file("cert.pem", "placeholder\n", 0644);
	write_file("key.pem", "placeholder\n", 0600);
	write_file("ca.pem", "placeholder\n", 0644);
	write_file("crl.pem", "placeholder\n", 0644);
	write_file("module.so", "placeholder\n", 0644);
	write_file("presets.conf", "placeholder\n", 0644);
	write_file("user.pin", "123456\n", 0600);
	write_file("open.pin", "123456\n", 0644);
	char data[600];
	snprintf(data, sizeof(data), "%s/pki", dir);
	if (op_make(data) != 0)
		return -1;
	/* officer-a's key under a second certificate */
	snprintf(data, sizeof(data), "%s/pki/officers/officer-a.key", dir);
	FILE *f = fopen(data, "r");
	EVP_PKEY *key = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f != NULL)
		fclose(f);
	snprintf(data, sizeof(data), "%s/pki", dir);
	int issued = key != NULL ? op_issue(data, "officer-a-2027", key) : -1;
	EVP_PKEY_free(key);
	if (issued != 0)
		return -1;
	snprintf(data, sizeof(data), "%s/data", dir);
	return mkdir(data, 0700);
}

static void test_good_file(void **state)
{
	(void)state;
	char path[700], expect[800];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_config("good.conf", 0, 0, NULL, path, sizeof(path));
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	assert_int_equal(diag.count, 0);
	assert_string_equal(cfg->server.listen, "127.0.0.1:8443");
	/* the trailing slash is dropped so URLs can be joined */
	assert_string_equal(cfg->server.public_base_url, "https://credsign.test:8443");
	snprintf(expect, sizeof(expect), "%s/cert.pem", dir);
	assert_string_equal(cfg->tls.cert, expect);
	snprintf(expect, sizeof(expect), "%s/data/credsign.db", dir);
	assert_string_equal(cfg->store.path, expect);
	assert_true(cfg->tls.crl_check);
	assert_int_equal(cfg->tls.verify_depth, 3);
	assert_int_equal(cfg->pkcs11.sessions, 8);
	assert_string_equal(cfg->pkcs11.signing_key, "pkcs11:token=credsign;object=es256");
	assert_int_equal(cfg->log.level, CS_LOG_DEBUG);
	assert_int_equal(cfg->log.format, CS_LOG_JSON);
	assert_string_equal(cfg->pkcs11.validation.program, "FIPS 140-3");
	assert_string_equal(cfg->pkcs11.validation.certificate, "4745");
	assert_string_equal(cfg->pkcs11.validation.module, "Test HSM");
	assert_int_equal(cfg->pkcs11.validation.level, 3);
	/* versions are compared as the token reports them: normalized */
	assert_string_equal(cfg->pkcs11.validation.hardware_version, "2.6");
	assert_string_equal(cfg->pkcs11.validation.firmware_version, "2.6");
	assert_null(cfg->pkcs11.validation.library_version);
	assert_false(cfg->crypto.openssl_fips);
	cs_config_diag_free(&diag);
	cs_config_free(cfg);
}

static void test_defaults(void **state)
{
	(void)state;
	char path[700];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_file("minimal.conf",
		   "tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
		   "pkcs11 = { module = \"softhsm2\"; token_uri = \"pkcs11:token=t\";\n"
		   "  pin_file = \"user.pin\"; signing_key = \"pkcs11:object=k\"; };\n",
		   0600);
	snprintf(path, sizeof(path), "%s/minimal.conf", dir);
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_string_equal(cfg->server.listen, "127.0.0.1:8443");
	assert_string_equal(cfg->server.node_id, "node-1");
	assert_null(cfg->tls.crl);
	assert_false(cfg->tls.crl_check);
	assert_int_equal(cfg->tls.verify_depth, 4);
	assert_int_equal(cfg->pkcs11.sessions, 4);
	assert_int_equal(cfg->store.session_retention_seconds, 86400);
	assert_false(cfg->certificates.public); /* certificates: their project's auditors and generators */
	assert_string_equal(cfg->pkcs11.module, "softhsm2"); /* a p11-kit module name */
	assert_int_equal(cfg->log.level, CS_LOG_INFO);
	assert_int_equal(cfg->log.format, CS_LOG_LOGFMT);
	/* no validation declared: the token is not validated */
	assert_string_equal(cfg->pkcs11.validation.program, "none");
	assert_null(cfg->pkcs11.validation.certificate);
	assert_null(cfg->pkcs11.validation.module);
	assert_int_equal(cfg->pkcs11.validation.level, 0);
	assert_null(cfg->pkcs11.validation.hardware_version);
	assert_false(cfg->crypto.openssl_fips);
	/* no ceremony group: no ceremonies */
	assert_false(cfg->ceremony.present);
	assert_int_equal(cfg->ceremony.nofficers, 0);
	/* no account: the daemon refuses to start as root (confine.h);
	 * every hardening on */
	assert_null(cfg->server.user);
	assert_null(cfg->server.group);
	assert_false(cfg->server.allow_root);
	assert_true(cfg->hardening.privsep);
	assert_true(cfg->hardening.seccomp);
	assert_true(cfg->hardening.mlock);
	/* no inventory group: due soon is 14 days, the PCI 8.3.9 change not used */
	assert_int_equal(cfg->inventory.due_soon_days, 14);
	assert_int_equal(cfg->inventory.pci_password_change_days, 0);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
	/* the group, at 8.3.9's maximum */
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("inventory = { due_soon_days = 30; pci_password_change_days = 90; };\n", f);
	fclose(f);
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_int_equal(cfg->inventory.due_soon_days, 30);
	assert_int_equal(cfg->inventory.pci_password_change_days, 90);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
}

/* server.user and server.group name accounts of this machine; the
 * hardening group turns each part off */
static void test_accounts_and_hardening(void **state)
{
	(void)state;
	char path[700];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_config("accounts.conf", 4, 4,
		     "  node_id = \"test-1\"; user = \"nobody\"; group = \"nogroup\"; allow_root = true;", path,
		     sizeof(path));
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fputs("hardening = { privsep = false; seccomp = false; mlock = false; };\n", f);
	fclose(f);
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	assert_string_equal(cfg->server.user, "nobody");
	assert_string_equal(cfg->server.group, "nogroup");
	assert_true(cfg->server.allow_root);
	assert_false(cfg->hardening.privsep);
	assert_false(cfg->hardening.seccomp);
	assert_false(cfg->hardening.mlock);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
	/* a user alone: the group is the user's primary group (confine.h) */
	write_config("user-only.conf", 4, 4, "  node_id = \"test-1\"; user = \"nobody\";", path, sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_string_equal(cfg->server.user, "nobody");
	assert_null(cfg->server.group);
	assert_true(cfg->hardening.seccomp);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
}

/* pkcs11.init_args for a module given by path; no PIN source (the token's
 * CKF_LOGIN_REQUIRED decides at start) */
static void test_module_by_path_with_init_args(void **state)
{
	(void)state;
	char path[700];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_file("init-args.conf",
		   "tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
		   "pkcs11 = { module = \"./module.so\"; init_args = \"configdir='/etc/hsm' flags=readOnly\";\n"
		   "  token_uri = \"pkcs11:token=t\"; signing_key = \"pkcs11:object=k\"; };\n",
		   0600);
	snprintf(path, sizeof(path), "%s/init-args.conf", dir);
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	assert_string_equal(cfg->pkcs11.init_args, "configdir='/etc/hsm' flags=readOnly");
	assert_null(cfg->pkcs11.pin_file);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
}

/* cs_config_reload: the network process, without the right to read the
 * PIN and the TLS key, reloads (SIGHUP) the rest; cs_config_load refuses */
static void test_reload_without_secrets(void **state)
{
	(void)state;
	char path[700], expect[800];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_file("unreadable.conf",
		   "tls = { cert = \"cert.pem\"; key = \"no-such-key.pem\"; ca = \"ca.pem\"; };\n"
		   "pkcs11 = { module = \"./module.so\"; token_uri = \"pkcs11:token=t?pin-source=file:/nonexistent/u.pin\";\n"
		   "  pin_file = \"open.pin\"; signing_key = \"pkcs11:object=k\"; };\n",
		   0600);
	snprintf(path, sizeof(path), "%s/unreadable.conf", dir);
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_E_CONFIG);
	assert_int_equal(diag.count, 3); /* tls.key, the pin-source, pkcs11.pin_file */
	cs_config_diag_free(&diag);
	cs_err r = cs_config_reload(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	snprintf(expect, sizeof(expect), "%s/no-such-key.pem", dir);
	assert_string_equal(cfg->tls.key, expect);
	snprintf(expect, sizeof(expect), "%s/open.pin", dir);
	assert_string_equal(cfg->pkcs11.pin_file, expect);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
	/* everything else is checked all the same */
	write_file("reload-bad.conf",
		   "tls = { cert = \"missing.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
		   "pkcs11 = { module = \"./module.so\"; token_uri = \"pkcs11:token=t\";\n"
		   "  pin_file = \"user.pin\"; signing_key = \"pkcs11:object=k\"; };\n",
		   0600);
	snprintf(path, sizeof(path), "%s/reload-bad.conf", dir);
	assert_int_equal(cs_config_reload(path, &cfg, &diag), CS_E_CONFIG);
	assert_int_equal(diag.count, 1);
	assert_non_null(strstr(diag.messages[0], "setting 'tls.cert'"));
	cs_config_diag_free(&diag);
}

/* A PIN file owned by another account: root running a tool (this test,
 * credsign-admin) reads it (two accounts: only root reaches both the token
 * and the store); another account is refused, with a message naming the
 * owner, the account that reads it and the fix. */
static void test_pin_owner(void **state)
{
	(void)state;
	char path[700], pin[700];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	if (geteuid() != 0) {
		skip();
		return;
	}
	/* a directory every account reaches (the test state may sit under
	 * directories that uid 1 cannot search) */
	char tdir[] = "/tmp/credsign-pin-owner.XXXXXX";
	assert_non_null(mkdtemp(tdir));
	assert_int_equal(chmod(tdir, 0755), 0);
	snprintf(pin, sizeof(pin), "%s/nobody.pin", tdir);
	ts_write_file(pin, "123456\n", 0600);
	assert_int_equal(chown(pin, 65534, (gid_t)-1), 0);
	snprintf(path, sizeof(path), "%s/owner.conf", tdir);
	char text[4096]; /* the TLS files and module of the test's own directory */
	snprintf(text, sizeof(text),
		 "tls = { cert = \"%s/cert.pem\"; key = \"%s/key.pem\"; ca = \"%s/ca.pem\"; };\n"
		 "pkcs11 = { module = \"%s/module.so\"; token_uri = \"pkcs11:token=t\";\n"
		 "  pin_file = \"nobody.pin\"; signing_key = \"pkcs11:object=k\"; };\n",
		 dir, dir, dir, dir);
	ts_write_file(path, text, 0644);
	/* root, a tool: accepted */
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	cs_config_free(cfg);
	cfg = NULL;
	/* another account (uid 1, "daemon" on Debian): refused, named */
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (setresgid(1, 1, 1) != 0 || setresuid(1, 1, 1) != 0)
			_exit(2);
		cs_config_diag d;
		cs_config *c = NULL;
		if (cs_config_load(path, &c, &d) != CS_E_CONFIG)
			_exit(3);
		char want[2048], oname[80], rname[64];
		struct passwd *pw = getpwuid(65534); /* static storage: copied before the next */
		snprintf(oname, sizeof(oname), "%s", pw != NULL ? pw->pw_name : "uid 65534");
		const char *osuffix = pw != NULL ? " (uid 65534)" : "";
		struct passwd *runner = getpwuid(1);
		snprintf(rname, sizeof(rname), "%s", runner != NULL ? runner->pw_name : "1");
		snprintf(want, sizeof(want), "owned by %s%s; %s runs as %s (uid 1): chown %s %s && chmod 600 %s", oname,
			 osuffix, program_invocation_short_name, rname, rname, pin, pin);
		/* (the other files of this test are root's: refused too) */
		for (size_t k = 0; k < d.count; k++)
			if (strstr(d.messages[k], want) != NULL)
				_exit(0);
		fprintf(stderr, "no message has: %s\n", want);
		_exit(4);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	unlink(pin);
	unlink(path);
	rmdir(tdir);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
}

static void test_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const bad_case *c = &bad[i];
		char name[32], path[700], want[900];
		cs_config *cfg = NULL;
		cs_config_diag diag;
		snprintf(name, sizeof(name), "bad-%02zu.conf", i);
		write_config(name, c->first, c->last, c->text, path, sizeof(path));
		assert_int_equal(cs_config_load(path, &cfg, &diag), CS_E_CONFIG);
		assert_null(cfg);
		if (c->setting == NULL)
			snprintf(want, sizeof(want), "%s:%d: ", path, c->line);
		else if (c->line > 0)
			snprintf(want, sizeof(want), "%s:%d: setting '%s': ", path, c->line, c->setting);
		else
			snprintf(want, sizeof(want), "%s: setting '%s': ", path, c->setting);
		int matched = 0;
		for (size_t m = 0; m < diag.count; m++) {
			if (strncmp(diag.messages[m], want, strlen(want)) == 0 &&
			    strstr(diag.messages[m], c->reason) != NULL)
				matched = 1;
			/* a password in a setting is never repeated */
			assert_null(strstr(diag.messages[m], "secret"));
		}
		if (!matched) {
			fprintf(stderr, "case %zu: wanted '%s...%s', got:\n", i, want, c->reason);
			for (size_t m = 0; m < diag.count; m++)
				fprintf(stderr, "  %s\n", diag.messages[m]);
		}
		assert_true(matched);
		/* one edit, one complaint */
		if (diag.count != 1)
			for (size_t m = 0; m < diag.count; m++)
				fprintf(stderr, "case %zu: %s\n", i, diag.messages[m]);
		assert_int_equal(diag.count, 1);
		cs_config_diag_free(&diag);
	}
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	char path[700];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_file("many.conf",
		   "tls = { cert = \"nope.pem\"; key = \"key.pem\"; ca = 7; verify_depth = 0; };\n"
		   "pkcs11 = { module = \"softhsm2\"; token_uri = \"pkcs11:token=t\";\n"
		   "  pin_file = \"open.pin\"; signing_key = \"x\"; colour = \"blue\"; };\n"
		   "log = { level = \"loud\"; };\n",
		   0600);
	snprintf(path, sizeof(path), "%s/many.conf", dir);
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_E_CONFIG);
	const char *expected[] = {"'tls.cert'", "'tls.ca'", "'tls.verify_depth'", "'pkcs11.pin_file'",
				  "'pkcs11.signing_key'", "'pkcs11.colour'", "'log.level'"};
	for (size_t e = 0; e < sizeof(expected) / sizeof(expected[0]); e++) {
		int found = 0;
		for (size_t m = 0; m < diag.count; m++)
			found |= strstr(diag.messages[m], expected[e]) != NULL;
		assert_true(found);
	}
	assert_int_equal(diag.count, 7);
	cs_config_diag_free(&diag);
}

/* access.grants: every member parsed; a rate without a burst gets one
 * second's worth; no grants: none (everyone refused); certificates.public
 * beside them (default false). */
static void test_access_grants(void **state)
{
	(void)state;
	char path[700];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_file("grants.conf",
		   "tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
		   "pkcs11 = { module = \"softhsm2\"; token_uri = \"pkcs11:token=t\";\n"
		   "  pin_file = \"user.pin\"; signing_key = \"pkcs11:object=k\"; };\n"
		   "certificates = { public = true; };\n"
		   "access = { grants = (\n"
		   "  { identity = \"spiffe://credsign.test/ci-deployer\"; role = \"generator\";\n"
		   "    projects = [ \"payments\" ]; environments = [ \"production\", \"staging\" ];\n"
		   "    presets = [ \"soc2\" ]; rate = 20.0; burst = 40; },\n"
		   "  { identity = \"spiffe://example.org/ns/web/*\"; role = \"generator\";\n"
		   "    projects = [ \"web\" ]; environments = [ \"*\" ]; rate = 2.5; },\n"
		   "  { identity = \"spiffe://credsign.test/auditor\"; role = \"auditor\"; projects = [ \"*\" ]; },\n"
		   "  { identity = \"spiffe://credsign.test/operator\"; role = \"operator\"; rate = 3; }\n"
		   "); };\n",
		   0600);
	snprintf(path, sizeof(path), "%s/grants.conf", dir);
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	assert_int_equal(cfg->access.ngrants, 4);
	const cs_config_grant *g = cfg->access.grants;
	assert_string_equal(g[0].identity, "spiffe://credsign.test/ci-deployer");
	assert_int_equal(g[0].role, CS_ROLE_GENERATOR);
	assert_string_equal(g[0].projects[0], "payments");
	assert_null(g[0].projects[1]);
	assert_string_equal(g[0].environments[0], "production");
	assert_string_equal(g[0].environments[1], "staging");
	assert_null(g[0].environments[2]);
	assert_string_equal(g[0].presets[0], "soc2");
	assert_true(g[0].rate == 20.0);
	assert_int_equal(g[0].burst, 40);
	assert_string_equal(g[1].identity, "spiffe://example.org/ns/web/*");
	assert_string_equal(g[1].environments[0], "*");
	assert_null(g[1].presets); /* every preset */
	assert_true(g[1].rate == 2.5);
	assert_int_equal(g[1].burst, 3);
	assert_int_equal(g[2].role, CS_ROLE_AUDITOR);
	assert_string_equal(g[2].projects[0], "*");
	assert_null(g[2].environments);
	assert_true(g[2].rate == 0.0);
	assert_int_equal(g[2].burst, 0);
	assert_int_equal(g[3].role, CS_ROLE_OPERATOR);
	assert_null(g[3].projects);
	assert_true(g[3].rate == 3.0);
	assert_int_equal(g[3].burst, 3);
	assert_true(cfg->certificates.public);
	/* where a grant's setting is, for messages found after loading */
	char where[800], want[800];
	cs_config_where(cfg, "access.grants.[1].projects", where, sizeof(where));
	snprintf(want, sizeof(want), "%s:10", cfg->file);
	assert_string_equal(where, want);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	/* none given: no grant; an empty list: the same */
	snprintf(path, sizeof(path), "%s/minimal.conf", dir);
	write_file("minimal.conf",
		   "tls = { cert = \"cert.pem\"; key = \"key.pem\"; ca = \"ca.pem\"; };\n"
		   "pkcs11 = { module = \"softhsm2\"; token_uri = \"pkcs11:token=t\";\n"
		   "  pin_file = \"user.pin\"; signing_key = \"pkcs11:object=k\"; };\n"
		   "access = { grants = (); };\n",
		   0600);
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_int_equal(cfg->access.ngrants, 0);
	assert_null(cfg->access.grants);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
}

/* ceremony: the officers with their fingerprints, the defaults, paths
 * resolved; an officer CA that is the TLS client CA refused. */
static void test_ceremony(void **state)
{
	(void)state;
	char path[700], expect[800], fpr[72];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_config("ceremony.conf", 29, 29,
		     "ceremony = {\n  " OCA "\n  officer_crl = \"pki/officer-crl.pem\";\n  " OFFS "\n};", path,
		     sizeof(path));
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	assert_true(cfg->ceremony.present);
	snprintf(expect, sizeof(expect), "%s/pki/officer-ca.pem", dir);
	assert_string_equal(cfg->ceremony.officer_ca, expect);
	snprintf(expect, sizeof(expect), "%s/pki/officer-crl.pem", dir);
	assert_string_equal(cfg->ceremony.officer_crl, expect);
	assert_int_equal(cfg->ceremony.quorum, 2);
	assert_int_equal(cfg->ceremony.revoke_quorum, 1);
	assert_int_equal(cfg->ceremony.expiry_minutes, 60);
	assert_int_equal(cfg->ceremony.nofficers, 3);
	static const char *const names[] = {"officer-a", "officer-b", "officer-c"};
	for (size_t i = 0; i < 3; i++) {
		assert_string_equal(cfg->ceremony.officers[i].name, names[i]);
		snprintf(expect, sizeof(expect), "%s/pki/officers/%s.pem", dir, names[i]);
		assert_string_equal(cfg->ceremony.officers[i].certificate, expect);
		assert_int_equal(op_fingerprint(expect, fpr), 0);
		assert_string_equal(cfg->ceremony.officers[i].fingerprint, fpr);
	}
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	/* settings given; the officer CA may not be the TLS client CA */
	write_config("ceremony-set.conf", 29, 29,
		     "ceremony = { " OCA "quorum = 3; revoke_quorum = 2; expiry_minutes = 10080; " OFFS "};", path,
		     sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_int_equal(cfg->ceremony.quorum, 3);
	assert_int_equal(cfg->ceremony.revoke_quorum, 2);
	assert_int_equal(cfg->ceremony.expiry_minutes, 10080);
	assert_null(cfg->ceremony.officer_crl);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	write_config("ceremony-tls-ca.conf", 9, 9, "  ca = \"pki/officer-ca.pem\";", path, sizeof(path));
	FILE *f = fopen(path, "a");
	assert_non_null(f);
	fprintf(f, "ceremony = { " OCA OFFS "};\n");
	fclose(f);
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_E_CONFIG);
	assert_int_equal(diag.count, 1);
	snprintf(expect, sizeof(expect), "%s:29: setting 'ceremony.officer_ca': ", path);
	assert_int_equal(strncmp(diag.messages[0], expect, strlen(expect)), 0);
	assert_non_null(strstr(diag.messages[0], "is the TLS client CA (tls.ca"));
	cs_config_diag_free(&diag);
}

/* signing: the group parsed (defaults filled, iss from the public URL),
 * profiles found by name, the grants' profiles; absent: no profiles. */
static void test_signing(void **state)
{
	(void)state;
	char path[700], where[800], want[800];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	write_config("signing.conf", 29, 29,
		     "signing = {\n"
		     "  max_request_bytes = 91480; batch_max = 7;\n"
		     "  profiles = (\n"
		     "    { name = \"release\"; key = \"pkcs11:token=credsign;object=es256-release-1\";\n"
		     "      formats = [ \"jws\", \"dsse\", \"digest\" ]; typ = \"release+jwt\";\n"
		     "      payload_types = [ \"application/vnd.in-toto+json\", \"text/plain\" ];\n"
		     "      aud = [ \"https://deploy.example\" ]; lifetime_seconds = 3600; store_payload = true; },\n"
		     "    { name = \"tokens.v2\"; key = \"pkcs11:object=es256-tokens\"; formats = [ \"digest\" ];\n"
		     "      iss = \"https://issuer.example\"; max_payload_bytes = 1; }\n"
		     "  );\n"
		     "};\n"
		     "access = { grants = (\n"
		     "  { identity = \"spiffe://credsign.test/ci-deployer\"; role = \"signer\"; profiles = [ \"release\" ];\n"
		     "    rate = 5; },\n"
		     "  { identity = \"spiffe://credsign.test/auditor\"; role = \"auditor\"; projects = [ \"*\" ];\n"
		     "    profiles = [ \"*\" ]; },\n"
		     "  { identity = \"spiffe://credsign.test/auditor2\"; role = \"auditor\"; projects = [ \"*\" ]; }\n"
		     "); };",
		     path, sizeof(path));
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	/* 4 * ceil(65536 / 3) + 4096 = 91480: the default payload limit just fits */
	assert_int_equal(cfg->signing.max_request_bytes, 91480);
	assert_int_equal(cfg->signing.batch_max, 7);
	assert_int_equal(cfg->signing.nprofiles, 2);
	const cs_config_profile *p = cs_config_profile_find(cfg, "release");
	assert_ptr_equal(p, &cfg->signing.profiles[0]);
	assert_string_equal(p->key, "pkcs11:token=credsign;object=es256-release-1");
	assert_int_equal(p->formats, CS_SIG_FORMAT_JWS | CS_SIG_FORMAT_DSSE | CS_SIG_FORMAT_DIGEST);
	assert_string_equal(p->typ, "release+jwt");
	assert_string_equal(p->payload_types[0], "application/vnd.in-toto+json");
	assert_string_equal(p->payload_types[1], "text/plain");
	assert_null(p->payload_types[2]);
	assert_int_equal(p->max_payload_bytes, 65536);
	assert_string_equal(p->iss, "https://credsign.test:8443"); /* server.public_base_url */
	assert_string_equal(p->aud[0], "https://deploy.example");
	assert_null(p->aud[1]);
	assert_int_equal(p->lifetime_seconds, 3600);
	assert_true(p->store_payload);
	p = cs_config_profile_find(cfg, "tokens.v2");
	assert_ptr_equal(p, &cfg->signing.profiles[1]);
	assert_int_equal(p->formats, CS_SIG_FORMAT_DIGEST);
	assert_null(p->typ);
	assert_null(p->payload_types);
	assert_null(p->aud);
	assert_string_equal(p->iss, "https://issuer.example");
	assert_int_equal(p->max_payload_bytes, 1);
	assert_int_equal(p->lifetime_seconds, 0);
	assert_false(p->store_payload);
	assert_null(cs_config_profile_find(cfg, "Release"));
	assert_null(cs_config_profile_find(cfg, "nightly"));
	assert_null(cs_config_profile_find(cfg, NULL));
	/* grants */
	const cs_config_grant *g = cfg->access.grants;
	assert_int_equal(cfg->access.ngrants, 3);
	assert_int_equal(g[0].role, CS_ROLE_SIGNER);
	assert_string_equal(g[0].profiles[0], "release");
	assert_null(g[0].profiles[1]);
	assert_null(g[0].projects);
	assert_null(g[0].environments);
	assert_int_equal(g[0].burst, 5);
	assert_int_equal(g[1].role, CS_ROLE_AUDITOR);
	assert_string_equal(g[1].profiles[0], "*");
	assert_null(g[2].profiles); /* an auditor without profiles reads no signatures */
	/* where a profile's setting is (credsignd's messages about keys) */
	cs_config_where(cfg, "signing.profiles.[1].key", where, sizeof(where));
	snprintf(want, sizeof(want), "%s:36", path);
	assert_string_equal(where, want);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	/* formats by name */
	assert_string_equal(cs_sig_format_name(CS_SIG_FORMAT_JWS), "jws");
	assert_string_equal(cs_sig_format_name(CS_SIG_FORMAT_DSSE), "dsse");
	assert_string_equal(cs_sig_format_name(CS_SIG_FORMAT_DIGEST), "digest");
	assert_string_equal(cs_sig_format_name(CS_SIG_FORMAT_JWS | CS_SIG_FORMAT_DSSE), "?");
	assert_string_equal(cs_sig_format_name(0), "?");
	assert_int_equal(cs_sig_format_parse("jws"), CS_SIG_FORMAT_JWS);
	assert_int_equal(cs_sig_format_parse("dsse"), CS_SIG_FORMAT_DSSE);
	assert_int_equal(cs_sig_format_parse("digest"), CS_SIG_FORMAT_DIGEST);
	assert_int_equal(cs_sig_format_parse("JWS"), 0);
	assert_int_equal(cs_sig_format_parse(""), 0);
	assert_int_equal(cs_sig_format_parse(NULL), 0);

	/* no signing group: the defaults, no profiles */
	write_config("no-signing.conf", 0, 0, NULL, path, sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_int_equal(cfg->signing.max_request_bytes, 1048576);
	assert_int_equal(cfg->signing.batch_max, 100);
	assert_int_equal(cfg->signing.nprofiles, 0);
	assert_null(cfg->signing.profiles);
	assert_null(cs_config_profile_find(cfg, "release"));
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	/* every mistake of a profile reported, not only the first */
	write_config("signing-many.conf", 29, 29,
		     "signing = { profiles = ({ name = \"Bad\"; key = \"pkcs11:token=credsign;object=es256\";\n"
		     "  formats = [ \"jws\", \"dsse\" ]; lifetime_seconds = -5; }); };",
		     path, sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_E_CONFIG);
	const char *expected[] = {"29: setting 'signing.profiles.[0].name'", "29: setting 'signing.profiles.[0].key'",
				  "29: setting 'signing.profiles.[0].typ'", "29: setting 'signing.profiles.[0].payload_types'",
				  "30: setting 'signing.profiles.[0].lifetime_seconds'"};
	for (size_t e = 0; e < sizeof(expected) / sizeof(expected[0]); e++) {
		int found = 0;
		for (size_t m = 0; m < diag.count; m++)
			found |= strstr(diag.messages[m], expected[e]) != NULL;
		if (!found)
			fprintf(stderr, "missing: %s\n", expected[e]);
		assert_true(found);
	}
	assert_int_equal(diag.count, 5);
	cs_config_diag_free(&diag);
}

/* store.backend "postgresql": every setting of store.postgresql loaded,
 * store.path dropped; the target (store_target.h) names them, with
 * server.node_id as application_name. The default backend is SQLite, whose
 * target is the path. */
static void test_store_postgresql(void **state)
{
	(void)state;
	char path[700], expect[800];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	cs_store_target t;
	write_file("pg.pw", "secret\n", 0600);
	write_config("pg.conf", 23, 23,
		     "  backend = \"postgresql\"; postgresql = { connection = \"postgresql://n1@db.test:5433/credsign\"; "
		     "sslmode = \"verify-ca\"; ca_file = \"ca.pem\"; password_file = \"pg.pw\"; pool_size = 24; "
		     "statement_timeout_ms = 2500; connect_timeout_seconds = 7; node_role = \"cs_nodes\"; };",
		     path, sizeof(path));
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	assert_int_equal(cfg->store.backend, CS_CONFIG_STORE_POSTGRESQL);
	assert_null(cfg->store.path); /* the default is SQLite's only */
	assert_string_equal(cfg->store.postgresql.connection, "postgresql://n1@db.test:5433/credsign");
	assert_string_equal(cfg->store.postgresql.sslmode, "verify-ca");
	snprintf(expect, sizeof(expect), "%s/ca.pem", dir);
	assert_string_equal(cfg->store.postgresql.ca_file, expect);
	snprintf(expect, sizeof(expect), "%s/pg.pw", dir);
	assert_string_equal(cfg->store.postgresql.password_file, expect);
	assert_int_equal(cfg->store.postgresql.pool_size, 24);
	assert_int_equal(cfg->store.postgresql.statement_timeout_ms, 2500);
	assert_int_equal(cfg->store.postgresql.connect_timeout_seconds, 7);
	assert_string_equal(cfg->store.postgresql.node_role, "cs_nodes");
	assert_true(cs_store_target_is_pg(cfg));
	assert_int_equal(cs_store_target_from_config(cfg, &t), CS_OK);
	assert_int_equal(t.backend, CS_STORE_POSTGRESQL);
	assert_null(t.path);
	assert_ptr_equal(t.conninfo, cfg->store.postgresql.connection); /* into cfg, not copied */
	assert_string_equal(t.sslmode, "verify-ca");
	assert_ptr_equal(t.ca_file, cfg->store.postgresql.ca_file);
	assert_ptr_equal(t.password_file, cfg->store.postgresql.password_file);
	assert_string_equal(t.application_name, "test-1");
	assert_int_equal(t.statement_timeout_ms, 2500);
	assert_int_equal(t.connect_timeout_s, 7);
	assert_int_equal(t.pool_size, 24);
	assert_string_equal(t.node_role, "cs_nodes");
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	/* the defaults of the group; a keyword/value connection */
	write_config("pg-min.conf", 23, 23,
		     "  backend = \"postgresql\"; postgresql = { connection = \"host=db.test dbname=credsign\"; "
		     "ca_file = \"ca.pem\"; };", path,
		     sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_string_equal(cfg->store.postgresql.sslmode, "verify-full");
	assert_non_null(cfg->store.postgresql.ca_file);
	assert_null(cfg->store.postgresql.password_file);
	assert_int_equal(cfg->store.postgresql.pool_size, 16);
	assert_int_equal(cfg->store.postgresql.statement_timeout_ms, 5000);
	assert_int_equal(cfg->store.postgresql.connect_timeout_seconds, 5);
	assert_string_equal(cfg->store.postgresql.node_role, "credsign_node");
	assert_int_equal(cs_store_target_from_config(cfg, &t), CS_OK);
	assert_string_equal(t.conninfo, "host=db.test dbname=credsign");
	assert_string_equal(t.sslmode, "verify-full");
	assert_null(t.password_file);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);

	/* every sslmode libpq knows */
	static const char *const modes[] = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char text[300];
		snprintf(text, sizeof(text),
			 "  backend = \"postgresql\"; postgresql = { connection = \"host=db\"; sslmode = \"%s\"; "
			 "ca_file = \"ca.pem\"; };",
			 modes[i]);
		write_config("pg-mode.conf", 23, 23, text, path, sizeof(path));
		assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
		assert_string_equal(cfg->store.postgresql.sslmode, modes[i]);
		assert_true(cs_config_sslmode_known(modes[i]));
		cs_config_free(cfg);
		cs_config_diag_free(&diag);
	}
	assert_false(cs_config_sslmode_known("VERIFY-FULL"));
	assert_false(cs_config_sslmode_known(NULL));

	/* SQLite, the default: the path is the target */
	write_config("sqlite.conf", 0, 0, NULL, path, sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_int_equal(cfg->store.backend, CS_CONFIG_STORE_SQLITE);
	assert_false(cs_store_target_is_pg(cfg));
	assert_int_equal(cs_store_target_from_config(cfg, &t), CS_OK);
	assert_int_equal(t.backend, CS_STORE_SQLITE);
	assert_ptr_equal(t.path, cfg->store.path);
	assert_null(t.conninfo);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
	write_config("sqlite2.conf", 23, 23, "  backend = \"sqlite\"; path = \"data/credsign.db\";", path, sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_OK);
	assert_int_equal(cfg->store.backend, CS_CONFIG_STORE_SQLITE);
	/* an incomplete configuration (never a loaded one) is refused */
	char *saved = cfg->store.path;
	cfg->store.path = NULL;
	assert_int_equal(cs_store_target_from_config(cfg, &t), CS_E_CONFIG);
	cfg->store.path = saved;
	cfg->store.backend = CS_CONFIG_STORE_POSTGRESQL;
	assert_int_equal(cs_store_target_from_config(cfg, &t), CS_E_CONFIG); /* no connection */
	cfg->store.backend = CS_CONFIG_STORE_SQLITE;
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
}

/* store.postgresql.password_file belongs to the account that connects:
 * server.user when set (the network process), else the loader's. */
static void test_password_file_owner(void **state)
{
	(void)state;
	char path[700], pw[700], text[4096], want[1200];
	cs_config *cfg = NULL;
	cs_config_diag diag;
	if (geteuid() != 0) {
		skip();
		return;
	}
	const struct passwd *nobody = getpwnam("nobody");
	assert_non_null(nobody);
	uid_t nobody_uid = nobody->pw_uid;
	snprintf(pw, sizeof(pw), "%s/nobody.pw", dir);
	ts_write_file(pw, "secret\n", 0600);
	assert_int_equal(chown(pw, nobody_uid, (gid_t)-1), 0);
	/* server.user nobody (line 4): its file, accepted */
	snprintf(text, sizeof(text),
		 "  backend = \"postgresql\"; postgresql = { connection = \"host=db\"; sslmode = \"require\"; "
		 "password_file = \"%s\"; };", pw);
	char body[8192] = "";
	for (int line = 1; line <= GOOD_LINES; line++) {
		const char *l = line == 4 ? "  node_id = \"test-1\"; user = \"nobody\";" : line == 23 ? text : good[line - 1];
		size_t used = strlen(body);
		snprintf(body + used, sizeof(body) - used, "%s\n", l);
	}
	snprintf(path, sizeof(path), "%s/pw-owner.conf", dir);
	ts_write_file(path, body, 0600);
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "unexpected: %s\n", diag.messages[i]);
	assert_int_equal(r, CS_OK);
	cs_config_free(cfg);
	cs_config_diag_free(&diag);
	/* without server.user: root loads it, and it is nobody's: refused */
	write_config("pw-root.conf", 23, 23, text, path, sizeof(path));
	assert_int_equal(cs_config_load(path, &cfg, &diag), CS_E_CONFIG);
	snprintf(want, sizeof(want), "password file '%s' is owned by uid %ld, not by the user loading this configuration (uid 0)",
		 pw, (long)nobody_uid);
	assert_int_equal(diag.count, 1);
	if (strstr(diag.messages[0], want) == NULL)
		fprintf(stderr, "got: %s\nwanted: %s\n", diag.messages[0], want);
	assert_non_null(strstr(diag.messages[0], want));
	assert_non_null(strstr(diag.messages[0], ":23: setting 'store.postgresql.password_file': "));
	cs_config_diag_free(&diag);
	unlink(pw);
}

static void test_unreadable_config(void **state)
{
	(void)state;
	cs_config *cfg = NULL;
	cs_config_diag diag;
	assert_int_equal(cs_config_load("/nonexistent/credsignd.conf", &cfg, &diag), CS_E_CONFIG);
	assert_int_equal(diag.count, 1);
	assert_non_null(strstr(diag.messages[0], "/nonexistent/credsignd.conf: cannot read"));
	cs_config_diag_free(&diag);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_file),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_module_by_path_with_init_args),
		cmocka_unit_test(test_accounts_and_hardening),
		cmocka_unit_test(test_reload_without_secrets),
		cmocka_unit_test(test_pin_owner),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_access_grants),
		cmocka_unit_test(test_ceremony),
		cmocka_unit_test(test_signing),
		cmocka_unit_test(test_unreadable_config),
		cmocka_unit_test(test_store_postgresql),
		cmocka_unit_test(test_password_file_owner),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
