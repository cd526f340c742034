// SPDX-License-Identifier: MIT
/*
 * Address handles at a checkpoint: released; re-created after the ID
 * exchange, when the peers' new GIDs and LIDs are known.
 */
#include "ckpt.h"

static int ah_release(void)
{
	struct isn_ah *ah;
	int ret;

	isn_for_each_obj(struct isn_ah, ah, ISN_OBJ_AH)
	{
		if (!ah->real)
			continue;
		ret = isn_g.ops.destroy_ah(ah->real);
		if (ret)
			return -ret;
		ah->real = NULL;
	}
	return 0;
}

const struct isn_ck_kind isn_ck_ah = {
	.name = "ah",
	.release = ah_release,
	.connect = isn_ah_connect,
};
