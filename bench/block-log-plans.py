#!/usr/bin/env python3
"""How SQLite serves each read of the block log (the log page, its tallies,
the safeguarding panel, an entry's history, the report and export, the
trend, the shippers, retention), on four weeks of made-up rows (ROWS,
default 400,000: 100,000 a week, one of 800 devices, four profiles, ten
categories): prints each read's EXPLAIN QUERY PLAN and its best time of
three. The schema is this build's, read from src/journal/schema.rs, so a
change to the indexes shows here before it ships.

    bench/block-log-plans.py [DB] [--with-old-indexes]

DB (default /tmp/block-log-plans.db) is made afresh. --with-old-indexes
puts back the two indexes migration 4 dropped, to compare. The reads'
SQL is written out here as src/journal/read.rs builds it; the unit test
journal::tests::schema::each_read_of_the_block_log_has_the_index_it_needs
holds the plans of the real statements.
"""
import os
import random
import re
import sqlite3
import sys
import time

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
args = [a for a in sys.argv[1:] if not a.startswith('--')]
path = args[0] if args else '/tmp/block-log-plans.db'
extra = ('CREATE INDEX blocked_device ON blocked(device_name, at);'
         'CREATE INDEX blocked_profile ON blocked(profile, at);'
         if '--with-old-indexes' in sys.argv else '')
src = open(os.path.join(root, 'src/journal/schema.rs')).read()
body = src[src.index('const MIGRATIONS'):src.index('];', src.index('const MIGRATIONS'))]
migs = re.findall(r'"((?:[^"\\]|\\.)*)"', body, re.S)
if os.path.exists(path): os.remove(path)
db = sqlite3.connect(path)
for m in migs: db.executescript(m)
if extra: db.executescript(extra)
random.seed(1)
DAY = 86_400_000
now = 1_765_000_000_000
profiles = ['pupils-ks1', 'pupils-ks2', 'staff', 'under5']
cats = ['pornography','gambling','social','games','malware','self-harm','extremism','drugs','violence','chat', None]
clients = [f'10.0.{i//250}.{i%250}' for i in range(800)]
names = [f'site{i}.example{i%97}.com' for i in range(20000)]
rows = []
N = int(os.environ.get('ROWS', '400000'))
days = 28
for i in range(N):
    at = now - days*DAY + i * (days*DAY // N)
    c = random.randrange(800)
    dev = f'device-{c}' if c % 3 else None
    rows.append((at, at + 3000, random.randint(1, 5), clients[c], dev, None, f'owner{c}' if c%5==0 else None, None,
                 profiles[c % 4], 'vlan', random.choice(names), 'A', random.choice(cats), 'list', 'rule', 'null', 0))
t=time.time()
db.executemany("INSERT INTO blocked (at, last_at, count, client_ip, device_name, mac, owner, room, profile, listener, name, query_type, category, list, rule, action, locked) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
print(f'{N} rows inserted in {time.time() - t:.1f} s')
COLS = "id, at, COALESCE(last_at, at), count, client_ip, device_name, mac, owner, room, profile, listener, name, query_type, category, list, rule, action, locked"
week = now - 7*DAY
like = "(device_name LIKE ?3 ESCAPE '\\' OR client_ip LIKE ?3 ESCAPE '\\' OR mac LIKE ?3 ESCAPE '\\' OR owner LIKE ?3 ESCAPE '\\')"
Q = [
 ("log page, no filter, newest 50", f"SELECT {COLS} FROM blocked ORDER BY id DESC LIMIT 50 OFFSET 0", ()),
 ("log page tally, no filter", "SELECT count(*), coalesce(sum(count),0) FROM blocked", ()),
 ("log page, a week", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND at < ?2 ORDER BY id DESC LIMIT 50 OFFSET 0", (week, now)),
 ("log page tally, a week", "SELECT count(*), coalesce(sum(count),0) FROM blocked WHERE at >= ?1 AND at < ?2", (week, now)),
 ("log page, a day", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND at < ?2 ORDER BY id DESC LIMIT 50 OFFSET 0", (now-DAY, now)),
 ("log page tally, a day", "SELECT count(*), coalesce(sum(count),0) FROM blocked WHERE at >= ?1 AND at < ?2", (now-DAY, now)),
 ("log page, profile", f"SELECT {COLS} FROM blocked WHERE profile = ?1 ORDER BY id DESC LIMIT 50 OFFSET 0", ('staff',)),
 ("log page tally, profile", "SELECT count(*), coalesce(sum(count),0) FROM blocked WHERE profile = ?1", ('staff',)),
 ("log page, profile, a week", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND at < ?2 AND profile = ?3 ORDER BY id DESC LIMIT 50", (week, now, 'staff')),
 ("log page tally, profile, a week", "SELECT count(*), coalesce(sum(count),0) FROM blocked WHERE at >= ?1 AND at < ?2 AND profile = ?3", (week, now, 'staff')),
 ("log page, category", f"SELECT {COLS} FROM blocked WHERE category = ?1 ORDER BY id DESC LIMIT 50", ('self-harm',)),
 ("log page tally, category", "SELECT count(*), coalesce(sum(count),0) FROM blocked WHERE category = ?1", ('self-harm',)),
 ("safeguarding week: category this week, 10 newest", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND at < ?2 AND category = ?3 ORDER BY id DESC LIMIT 10", (week, now, 'self-harm')),
 ("safeguarding week: count", "SELECT count(*) FROM blocked WHERE at >= ?1 AND at < ?2 AND category = ?3", (week, now, 'self-harm')),
 ("log page, device text, a week", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND at < ?2 AND {like} ORDER BY id DESC LIMIT 50", (week, now, '%device-7%')),
 ("log page tally, device text", f"SELECT count(*), coalesce(sum(count),0) FROM blocked WHERE {like.replace('?3','?1')}", ('%device-7%',)),
 ("entry page: one client's week", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND client_ip = ?2 ORDER BY id DESC LIMIT 20", (week, '10.0.1.7')),
 ("entry page: one client's week (old row)", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND client_ip = ?2 ORDER BY id DESC LIMIT 20", (now - 27*DAY, '10.0.1.7')),
 ("entry page: by id", f"SELECT {COLS} FROM blocked WHERE id = ?1", (1234,)),
 ("report / export: a week oldest first", f"SELECT {COLS} FROM blocked WHERE at >= ?1 AND at < ?2 ORDER BY id ASC LIMIT -1", (week, now)),
 ("trend: a week's tally", "SELECT count(*), coalesce(sum(count),0) FROM blocked WHERE at >= ?1 AND at < ?2", (week-7*DAY, week)),
 ("shipper: rows after cursor", f"SELECT {COLS} FROM blocked WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3", (1000, 1_000_000, 500)),
 ("shipper: newest", "SELECT COALESCE(max(id), 0) FROM blocked", ()),
 ("shipper: backlog", "SELECT count(*) FROM blocked WHERE id > ?1", (300000,)),
 ("retention: oldest chunk", "SELECT id FROM blocked WHERE at < ?1 ORDER BY at LIMIT 5000", (now - 21*DAY,)),
 ("hourly: a week", "SELECT hour, profile, category, queries, blocked FROM hourly WHERE hour >= ?1 AND hour < ?2 ORDER BY hour, profile, category", (week, now)),
]
db.close()
db = sqlite3.connect(path)
for label, sql, args in Q:
    plan = ' | '.join(r[3] for r in db.execute('EXPLAIN QUERY PLAN ' + sql, args))
    best = 1e9
    for _ in range(3):
        t = time.perf_counter(); n = len(db.execute(sql, args).fetchall()); best = min(best, time.perf_counter() - t)
    print(f'{label:48s} {best*1000:8.1f} ms  {plan}')
