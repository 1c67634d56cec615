#!/usr/bin/env python3
"""The cost and the gain of the partial index books_polled_state (migration v15), on the system
SQLite: upserts of books rows with and without it (alternated), and the count of finished Books
with a retention poll read through books_tracked_state vs the new index. docs/benchmarks.md."""
import sqlite3, random, time, os
def run(extra, n=100000, updates=60000, seed=1):
    path='/dev/shm/idx.sqlite'
    for s in ['', '-wal', '-shm']:
        try: os.remove(path+s)
        except FileNotFoundError: pass
    c=sqlite3.connect(path, isolation_level=None)
    c.execute("pragma journal_mode=wal"); c.execute("pragma synchronous=full")
    c.execute("""create table books(uuid text primary key not null, pk int, state text not null, generation int not null, book_status text,
       last_polled_at int, next_poll_at int, poll_reason text, untracked_at int, created_at int not null, updated_at int not null)""")
    c.execute("CREATE INDEX books_due_poll ON books(next_poll_at) WHERE next_poll_at IS NOT NULL")
    c.execute("CREATE INDEX books_pk ON books(pk) WHERE pk IS NOT NULL")
    c.execute("CREATE INDEX books_state ON books(state, uuid)")
    c.execute("CREATE INDEX books_urgent_poll ON books(next_poll_at) WHERE poll_reason IS NOT NULL")
    c.execute("CREATE INDEX books_tracked_state ON books(state) WHERE untracked_at IS NULL")
    if extra: c.execute("CREATE INDEX books_polled_state ON books(state) WHERE untracked_at IS NULL AND next_poll_at IS NOT NULL")
    rng=random.Random(seed)
    states=['complete']*90+['processing']*5+['tracking']*3+['retrieving']*2
    c.execute("begin")
    for i in range(n):
        st=rng.choice(states)
        c.execute("insert into books values(?,?,?,?,?,?,?,?,?,?,?)",(f"u{i:08d}",i,st,1,'VERIFIED',0,(rng.randrange(10**9) if (st!='complete' or rng.random()<0.07) else None),None,None,0,0))
    c.execute("commit")
    ids=[rng.randrange(n) for _ in range(updates)]
    t=time.perf_counter()
    for i in ids:
        c.execute("begin immediate")
        c.execute("""insert into books values(?,?,?,?,?,?,?,?,?,?,?) on conflict(uuid) do update set pk=excluded.pk, state=excluded.state, generation=excluded.generation,
          book_status=excluded.book_status, last_polled_at=excluded.last_polled_at, next_poll_at=excluded.next_poll_at, poll_reason=excluded.poll_reason,
          untracked_at=excluded.untracked_at, updated_at=excluded.updated_at""", (f"u{i:08d}",i,'processing',1,'VERIFYING',1,rng.randrange(10**9),None,None,0,1))
        c.execute("commit")
    return updates/(time.perf_counter()-t)
for rnd in range(3):
    a=run(False); b=run(True)
    print(f"round {rnd}: without {a:.0f} upserts/s, with books_polled_state {b:.0f}/s, ratio {b/a:.3f}")

def count_cost(extra):
    run(extra, updates=1)
    c=sqlite3.connect('/dev/shm/idx.sqlite')
    q="SELECT COUNT(*) FROM books WHERE state IN ('retrieving','complete','failed') AND untracked_at IS NULL AND next_poll_at IS NOT NULL"
    t=time.perf_counter()
    for _ in range(200): c.execute(q).fetchone()
    return (time.perf_counter()-t)/200*1000
print(f"count at 100k Books: without the index {count_cost(False):.2f} ms, with {count_cost(True):.3f} ms")
