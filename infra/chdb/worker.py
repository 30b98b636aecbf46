"""A modern ClickHouse engine (chDB, in process) behind a line protocol, for the tests that
prove Yugong's SQL on it. One JSON request per line on stdin:
  {"id": 1, "sql": "...", "format": "JSONEachRow" | null, "data": "rows to insert" | null}
one JSON answer per line on stdout: {"id": 1, "ok": true, "text": "..."} or {"id": 1, "ok": false, "error": "..."}.
"""
import json
import sys

import chdb


def main() -> None:
    conn = chdb.connect(sys.argv[1])
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        sql = req["sql"]
        if req.get("data") is not None:
            sql = sql + "\n" + req["data"]
        try:
            fmt = req.get("format")
            result = conn.query(sql, fmt) if fmt else conn.query(sql)
            answer = {"id": req["id"], "ok": True, "text": str(result) if result is not None else ""}
        except Exception as err:  # every engine error goes back to the caller, which decides
            answer = {"id": req["id"], "ok": False, "error": str(err)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
