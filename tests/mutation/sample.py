"""Keep a seeded sample of a Cosmic Ray session's pending mutants and mark the rest skipped,
so that `make mutate` measures the larger modules in a bounded time. The sample is spread
over the whole session (every module, every operator) by a seeded shuffle; the score it gives
is an estimate, reported with its sample size in docs/testing.md.

    python -m tests.mutation.sample SESSION.sqlite --keep 40 --seed 7
"""

from __future__ import annotations

import argparse
import random

from cosmic_ray.work_db import use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("session")
    parser.add_argument("--keep", type=int, required=True, help="how many pending mutants to run")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with use_db(args.session) as db:
        pending = sorted((item.job_id for item in db.pending_work_items))
        kept = set(random.Random(args.seed).sample(pending, min(args.keep, len(pending))))
        skipped = WorkResult(output="not in the sample", worker_outcome=WorkerOutcome.SKIPPED)
        db.set_multiple_results([job for job in pending if job not in kept], skipped)
        print(f"{len(kept)} of {len(pending)} pending mutants kept (seed {args.seed})")


if __name__ == "__main__":
    main()
