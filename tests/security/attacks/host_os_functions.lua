-- class: host_escape
-- description: the os functions left (time, clock, date) reject out-of-range input cleanly
-- expect: status=succeeded
-- limits: wall_clock_seconds=10
assert(not pcall(os.date, "*t", 2^62))
assert(not pcall(os.time, {year = 2^62, month = 1, day = 1}))
assert(type(os.clock()) == "number" and type(os.time()) == "number")
return os.date("!%Y", 0)
