-- class: memory
-- description: json.encode of a table with 2^26 paths; the text would not fit in memory
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=16777216 instructions=2000000000 wall_clock_seconds=20
-- max_seconds: 10
local t = {1}
for i = 1, 26 do t = {t, t} end
return #json.encode(t)
