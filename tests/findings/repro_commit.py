# a scan opened inside BEGIN, then COMMIT while it is open, then read on
from common import *
import os
backend, sh = sys.argv[1], sys.argv[2]
P = f'{WORK}/rc.{backend}{sh}'; os.system(f'rm -rf {P}')
con = connect()
shards = f"shards={sh}, " if sh != '1' else ''
con.execute(f"CREATE VIRTUAL TABLE temp.t USING {backend}(path='{P}', shape='8x8x3', {shards}threads=2)")
con.execute("INSERT INTO t SELECT * FROM synthetic(500, '8x8x3', 1)")
con.execute("CREATE TEMP TABLE n(id INTEGER PRIMARY KEY, label, pixels)")
con.execute("INSERT INTO n SELECT * FROM synthetic(500, '8x8x3', 1)")
out = []
for tab in ('n', 't'):
    con.execute("BEGIN")
    con.execute(f"UPDATE {tab} SET label = 99 WHERE id = 400")
    c = con.cursor(); c.execute(f"SELECT id, label, pixels FROM {tab}"); a = c.fetchmany(10)
    con.execute("COMMIT")
    try: rest = c.fetchall(); out.append(f"{tab}: {len(a)+len(rest)} rows")
    except sqlite3.Error as e: out.append(f"{tab}: ERROR {e}")
print(backend, "shards", sh, "|", " ; ".join(out))
