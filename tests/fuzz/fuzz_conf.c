/*
 * libFuzzer harness for the configuration parser.  The fuzz build
 * compiles only the protocol sources beside a harness, so the parser and the
 * folder tables are included here whole.  Any input must end in a config
 * or in errors, without a crash, a leak or unbounded work; a config that
 * loads is then put through the helpers the daemon calls on it.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/parse.c"
#include "conf/folder_names.c"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
exercise(const struct config *conf, const char *text)
{
	static const char *const logins[] = {
		"alice", "alice@example.ac.jp", "a@b@c", "", "%u@%%"
	};
	size_t	 i, side;
	char	*s;

	for (i = 0; i < nitems(logins); i++) {
		for (side = 0; side < BACKEND_COUNT; side++) {
			s = config_expand_username(
			    conf->backend[side].username, logins[i]);
			if (s == NULL)
				abort();	/* load accepted the template */
			free(s);
			if (conf->backend[side].token_command == NULL)
				continue;
			s = config_expand_command(
			    conf->backend[side].token_command, logins[i]);
			if (s == NULL)
				abort();
			free(s);
		}
		(void)config_route_sender(conf, logins[i]);
	}
	(void)config_route_sender(conf, text);
	(void)config_folder_hidden(conf, text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors	 errs;
	struct config		*conf;
	char			*text;
	size_t			 half = size / 2;

	conf = config_parse_buffer("fuzz.conf", (const char *)data, size,
	    CONFIG_NO_SYSTEM_CHECKS, &errs);
	if ((conf == NULL) != (errs.count != 0))
		abort();
	config_errors_clear(&errs);

	/* NUL-terminated copies: the text, and its halves as a glob. */
	if ((text = malloc(size + 2)) == NULL)
		return 0;
	memcpy(text, data, half);
	text[half] = '\0';
	memcpy(text + half + 1, data + half, size - half);
	text[size + 1] = '\0';
	(void)config_glob_match(text, text + half + 1);
	(void)folder_role_by_name(text, NULL);
	(void)folder_name_is_hidden(text);
	if (conf != NULL)
		exercise(conf, text + half + 1);
	config_free(&conf);
	free(text);
	return 0;
}
