-- class: memory
-- description: double a string until allocation fails
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 5
local s = "x"
while true do s = s .. s end
