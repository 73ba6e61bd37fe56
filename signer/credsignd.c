/*
 * credsignd: the signing appliance daemon.
 *
 *   credsignd --check-config FILE   validate a configuration and exit 0/1
 *   credsignd --version
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static int check_config(const char *path)
{
	cs_config *cfg = NULL;
	cs_config_diag diag;
	cs_err r = cs_config_load(path, &cfg, &diag);
	for (size_t i = 0; i < diag.count; i++)
		fprintf(stderr, "%s\n", diag.messages[i]);
	cs_config_diag_free(&diag);
	if (r != CS_OK) {
		fprintf(stderr, "%s: configuration invalid\n", path);
		return 1;
	}
	printf("%s: configuration valid\n", cfg->file);
	cs_config_free(cfg);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: credsignd --check-config FILE\n"
		   "       credsignd --version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"check-config", required_argument, NULL, 'C'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'C':
			return check_config(optarg);
		case 'V':
			printf("credsignd %s\n", CREDSIGN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	usage(stderr);
	return 2;
}
