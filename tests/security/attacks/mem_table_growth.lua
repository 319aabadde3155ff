-- class: memory
-- description: grow a table without end
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 5
local t = {}
local i = 0
while true do i = i + 1 t[i] = {i} end
