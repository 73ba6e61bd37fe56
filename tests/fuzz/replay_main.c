/* replay_main: runs a fuzz target's harness once on every file of the
 * directories it is given, without libFuzzer, so that the seed corpora are
 * part of the ordinary builds (normal, ASan/UBSan, coverage) and a gcc build
 * can count what they reach. A harness reports a finding by aborting, as
 * under libFuzzer; a directory with no file fails the run, so a corpus that
 * went missing is noticed. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	uint8_t *data = NULL;
	size_t size = 0, cap = 0;
	for (;;) {
		if (size == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *grown = realloc(data, cap);
			if (grown == NULL) {
				free(data);
				fclose(f);
				return -1;
			}
			data = grown;
		}
		size_t n = fread(data + size, 1, cap - size, f);
		size += n;
		if (n == 0)
			break;
	}
	int read_error = ferror(f);
	fclose(f);
	if (read_error) {
		fprintf(stderr, "%s: read error\n", path);
		free(data);
		return -1;
	}
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS-DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		DIR *dir = opendir(argv[i]);
		if (dir == NULL) {
			perror(argv[i]);
			return 1;
		}
		unsigned replayed = 0;
		struct dirent *entry;
		while ((entry = readdir(dir)) != NULL) {
			char path[4096];
			struct stat st;
			if (snprintf(path, sizeof path, "%s/%s", argv[i], entry->d_name) >= (int)sizeof path ||
			    stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			if (replay_file(path) != 0) {
				closedir(dir);
				return 1;
			}
			replayed++;
		}
		closedir(dir);
		if (replayed == 0) {
			fprintf(stderr, "%s: no input to replay\n", argv[i]);
			return 1;
		}
		printf("%s: %u inputs replayed\n", argv[i], replayed);
	}
	return 0;
}
