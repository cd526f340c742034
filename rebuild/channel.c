// SPDX-License-Identifier: MIT
/*
 * Completion channels at a rebuild: a new backend channel, watched by the
 * event thread; the application keeps its fd (the shim's pipe).
 */
#include <errno.h>

#include "../drain/ckpt.h"

int isn_channel_rebuild(void)
{
	struct isn_channel *ch;
	int ret;

	isn_for_each_obj(struct isn_channel, ch, ISN_OBJ_CHANNEL)
	{
		if (ch->real)
			continue;
		ch->real = isn_g.ops.create_comp_channel(
			isn_ctx_of(ch->ibch.context)->real);
		if (!ch->real)
			return -errno;
		ret = isn_fd_nonblock(ch->real->fd);
		if (!ret)
			ret = isn_ev_watch(ch->real->fd, isn_channel_drain, ch,
					   &ch->watch);
		if (ret)
			return -ret;
	}
	return 0;
}
