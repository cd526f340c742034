// SPDX-License-Identifier: MIT
/*
 * Completion channels at a checkpoint: the events the backend channel
 * still holds are forwarded to the application's fd (a shim pipe that
 * stays), then the backend channel goes.
 */
#include "ckpt.h"

static int channel_release(void)
{
	struct isn_channel *ch;
	int ret;

	isn_for_each_obj(struct isn_channel, ch, ISN_OBJ_CHANNEL)
	{
		if (!ch->real)
			continue;
		isn_ev_unwatch(ch->watch);
		ch->watch = NULL;
		isn_channel_drain(ch);
		ret = isn_g.ops.destroy_comp_channel(ch->real);
		if (ret)
			return -ret;
		ch->real = NULL;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_channel = {
	.name = "channel",
	.release = channel_release,
	.rebuild = isn_channel_rebuild,
};
