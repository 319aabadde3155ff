-- class: memory
-- description: print a table with 2^21 paths through shared subtables (19 s and 470 MB before)
-- expect: status=limit_exceeded limit=output
-- limits: memory_bytes=33554432 output_bytes=1048576 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 3
local t = {1}
for i = 1, 21 do t = {t, t} end
print(t)
