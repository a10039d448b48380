#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "util.h"

static const char *const state_names[] = {
	[RCPT_TODO] = "todo", [RCPT_DEFERRED] = "deferred",
	[RCPT_SENT] = "sent", [RCPT_FAILED] = "failed",
};

void
env_add_rcpt(struct envelope *env, const char *addr)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++)
		if (strcmp(env->rcpt[i].addr, addr) == 0)
			return;
	env->rcpt = xrealloc(env->rcpt, (env->nrcpt + 1) * sizeof(*env->rcpt));
	memset(&env->rcpt[env->nrcpt], 0, sizeof(*env->rcpt));
	env->rcpt[env->nrcpt++].addr = xstrdup(addr);
}

int
rcpt_todo(const struct rcpt *r)
{
	return r->state == RCPT_TODO || r->state == RCPT_DEFERRED;
}

size_t
env_count(const struct envelope *env, enum rcpt_state st)
{
	size_t	i, n = 0;

	for (i = 0; i < env->nrcpt; i++)
		n += env->rcpt[i].state == st;
	return n;
}

size_t
env_todo(const struct envelope *env)
{
	return env_count(env, RCPT_TODO) + env_count(env, RCPT_DEFERRED);
}

void
rcpt_set_reply(struct rcpt *r, int code, const char *text)
{
	r->code = code;
	sanitize(r->text, sizeof(r->text), text, strlen(text));
}

void
env_free(struct envelope *env)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++)
		free(env->rcpt[i].addr);
	free(env->rcpt);
	free(env->sender);
	free(env->envid);
	free(env->notify);
	free(env->ret);
	free(env->body);
	memset(env, 0, sizeof(*env));
}

const char *
rcpt_state_name(enum rcpt_state st)
{
	return state_names[st];
}

int
rcpt_state_parse(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(name, state_names[i]) == 0)
			return (int)i;
	return -1;
}
