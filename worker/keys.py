"""Every Redis key luaq writes, named in one place.

    luaq:job:{job_id}            hash    the job record: request, status, attempt, envelope
    luaq:events:{job_id}         stream  queued / started / log / call / finished events
    luaq:finished                stream  every finished envelope, for consumer groups
    luaq:leases                  zset    running jobs: job id -> lease expiry (ms, server clock)
    luaq:orphans                 zset    running jobs whose worker is gone, queued again: id -> retry time (ms)
    luaq:node:{worker}           set     the jobs one worker process is running
    luaq:agent:{agent}:queued    zset    an agent's queued jobs: id -> submitted (ms)
    luaq:agent:{agent}:running   zset    an agent's running jobs: id -> lease expiry (ms)
    luaq:journal:{job_id}        list    the job's write calls, each recorded before it is sent (JSON, with its attempt)
    luaq:cancels                 set     running jobs asked to stop (their workers poll it)
    luaq:accounts                hash    account name -> until when (ms) a worker said it can run jobs for it
    luaq:limits:{supervisor}     string  the rate limits one ``luaq worker`` enforces (JSON), expiring unless renewed
    luaq:rate:{account}:{bucket}          string  GCRA theoretical arrival time (ms)
    luaq:rate:{account}:{bucket}:blocked  string  blocked until (ms), after a 429
    luaq:inflight:{account}      zset    in-flight request leases: lease id -> expiry (ms)
    luaq:spend:{account}:daily   hash    day (UTC day number), predictions (created that day)

Each family has its own prefix, so no job id (``:`` is allowed in ids) can name another
job's key.

Celery's own keys (the queue lists, ``unacked``, ``_kombu.*``) live beside these in the
same database; all luaq keys start with ``luaq:``.
"""

PREFIX = "luaq:"
FINISHED_STREAM = f"{PREFIX}finished"
LEASES = f"{PREFIX}leases"
ORPHANS = f"{PREFIX}orphans"
NODE_PREFIX = f"{PREFIX}node:"
AGENT_PREFIX = f"{PREFIX}agent:"
CANCELS = f"{PREFIX}cancels"
ACCOUNTS = f"{PREFIX}accounts"
LIMITS_PREFIX = f"{PREFIX}limits:"


def job(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def job_events(job_id: str) -> str:
    return f"{PREFIX}events:{job_id}"


def journal(job_id: str) -> str:
    return f"{PREFIX}journal:{job_id}"


def rate(account: str, bucket: str) -> str:
    return f"{PREFIX}rate:{account}:{bucket}"


def rate_block(account: str, bucket: str) -> str:
    return f"{PREFIX}rate:{account}:{bucket}:blocked"


def in_flight(account: str) -> str:
    return f"{PREFIX}inflight:{account}"


def daily_spend(account: str) -> str:
    return f"{PREFIX}spend:{account}:daily"


def node_jobs(worker: str) -> str:
    return f"{NODE_PREFIX}{worker}"


def agent_queued(agent: str) -> str:
    return f"{AGENT_PREFIX}{agent}:queued"


def agent_running(agent: str) -> str:
    return f"{AGENT_PREFIX}{agent}:running"


def limits(supervisor: str) -> str:
    return f"{LIMITS_PREFIX}{supervisor}"
