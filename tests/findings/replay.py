from common import *
import shutil, random, json
queries = ["SELECT id, label, pixels FROM t", "SELECT id, label, CASE WHEN id > 700 THEN pixels ELSE NULL END FROM t",
           "SELECT id, label, pixels FROM t WHERE id > 200", "SELECT id, label, pixels FROM t ORDER BY id"]
writes = ["INSERT INTO t SELECT id+{a}, label, pixels FROM synthetic(50, '8x8x3', {s})",
          "UPDATE t SET label = label + 1 WHERE id % {m} = 0",
          "DELETE FROM t WHERE id % {m} = 1",
          "INSERT OR REPLACE INTO t SELECT id+{b}, label+5, pixels FROM synthetic(30, '8x8x3', {s})",
          "UPDATE t SET pixels = zeroblob(192) WHERE id = {b}"]
def gen(seed, steps=60):
    rnd = random.Random(seed); ops=[]; nopen=0; live=[]
    for step in range(steps):
        op = rnd.random()
        if op < 0.25 and len(live) < 3:
            ops.append(['open', rnd.choice(queries)]); live.append(nopen); nopen+=1
        elif op < 0.5 and live:
            ops.append(['fetch', rnd.choice(live), rnd.randint(1,200)])
        else:
            w = rnd.choice(writes).format(a=rnd.randint(1500, 3000), b=rnd.randint(0, 1500), s=rnd.randint(1,9), m=rnd.randint(2, 9))
            c = rnd.random()
            ctl = 'BEGIN' if c < 0.1 else 'COMMIT' if c < 0.2 else 'SAVEPOINT' if c < 0.3 else None
            if ctl: ops.append(['ctl', ctl])
            ops.append(['write', w])
    return ops
def run(ops, backend, threads, shards, verbose=False, N=1500):
    path = f'{WORK}/R_{backend}_{os.getpid()}'
    shutil.rmtree(path, ignore_errors=True)
    if os.path.isfile(path): os.remove(path)
    con = connect()
    sh = f"shards={shards}, " if shards > 1 else ""
    con.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{path}', shape='8x8x3', {sh}threads={threads}, timeout=200)")
    con.execute(f"INSERT INTO t SELECT * FROM synthetic({N}, '8x8x3', 1)")
    con.execute("CREATE TEMP TABLE n(id INTEGER PRIMARY KEY, label INT, pixels BLOB)")
    con.execute(f"INSERT INTO n SELECT * FROM synthetic({N}, '8x8x3', 1)")
    valid = {}
    def snap():
        for i,l,p in con.execute("SELECT * FROM n"): valid.setdefault(i,set()).add((l,bytes(p)))
    snap(); scans = {}; problems = []
    for k, op in enumerate(ops):
        if op[0] == 'open':
            c = con.cursor()
            try: c.execute(op[1])
            except sqlite3.Error as e: problems.append(('openerr', k, str(e)[:400])); c = None
            scans[len(scans)] = [op[1], c, []]
        elif op[0] == 'fetch':
            s = scans.get(op[1])
            if s is None or s[1] is None: continue
            try: rows = s[1].fetchmany(op[2])
            except sqlite3.Error as e:
                if 'ended while' not in str(e): problems.append(('fetcherr', k, str(e)[:200]))
                s[1] = None; continue
            for r in rows:
                if r[2] is not None and (r[1], bytes(r[2])) not in valid.get(r[0], ()):
                    problems.append(('pixbad', k, r[0], r[1], s[0]))
            s[2] += [r[0] for r in rows]
            if any(b <= a for a,b in zip(s[2], s[2][1:])): problems.append(('order', k))
        elif op[0] == 'ctl':
            try: con.execute(op[1] if op[1] != 'SAVEPOINT' else 'SAVEPOINT s')
            except sqlite3.Error as e: pass
        else:
            w = op[1]
            try:
                con.execute(w)
            except sqlite3.Error as e:
                if 'still reading' not in str(e) and 'already exists' not in str(e): problems.append(('werr', k, str(e)[:200]))
                continue
            con.execute(w.replace('INTO t', 'INTO n').replace('UPDATE t', 'UPDATE n').replace('FROM t', 'FROM n'))
            snap()
    for s in scans.values(): s[1] and s[1].close()
    try:
        if con.in_transaction: con.execute("COMMIT")
    except sqlite3.Error as e: problems.append(('commit', str(e)[:100]))
    d = [con.execute(f"SELECT image_digest(id,label,pixels) FROM {x}").fetchone()[0] for x in 'tn']
    if d[0] != d[1]: problems.append(('final', d))
    con.close(); shutil.rmtree(path, ignore_errors=True)
    if os.path.isfile(path): os.remove(path)
    return problems
if __name__ == '__main__':
    backend, threads, shards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for seed in map(int, sys.argv[4].split(',')):
        p = run(gen(seed), backend, threads, shards)
        print(backend, threads, shards, seed, len(p), p[:3])
