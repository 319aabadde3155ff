-- class: memory
-- description: return a table with 2^21 paths through shared subtables
-- expect: status=limit_exceeded limit=result_size
-- limits: memory_bytes=33554432 result_bytes=1048576 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 3
local t = {1}
for i = 1, 21 do t = {t, t} end
return t
