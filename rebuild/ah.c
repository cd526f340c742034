// SPDX-License-Identifier: MIT
/*
 * Address handles at a rebuild, after the ID exchange: the program's
 * attributes (virtual GID/LID) translated to the peer's new real ones.
 */
#include <errno.h>

#include "../drain/ckpt.h"

int isn_ah_connect(void)
{
	struct ibv_ah_attr ra;
	struct isn_ah *ah;

	isn_for_each_obj(struct isn_ah, ah, ISN_OBJ_AH)
	{
		if (ah->real)
			continue;
		ra = ah->attr;
		ah->peer = isn_ah_attr_peer(&ah->attr);
		if (isn_slow_get() & ISN_SLOW_XLATE)
			isn_ah_attr_to_real(&ah->attr, &ra);
		ah->real =
			isn_g.ops.create_ah(isn_pd_of(ah->ibah.pd)->real, &ra);
		if (!ah->real)
			return -errno;
		ah->ibah.handle = ah->real->handle;
	}
	return 0;
}
