/* config_fuzz: credsignd.conf and presets files of arbitrary content. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "preset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/cs-fuzz-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	cs_config *cfg = NULL;
	cs_config_diag diag;
	if (cs_config_load(path, &cfg, &diag) == CS_OK)
		cs_config_free(cfg);
	cs_config_diag_free(&diag);
	cs_preset_set *set = NULL;
	if (cs_presets_load(path, path, &set, &diag) == CS_OK)
		cs_presets_free(set);
	cs_config_diag_free(&diag);
	unlink(path);
	return 0;
}
