-- class: cpu
-- description: a loop with an instruction budget larger than the wall clock allows
-- expect: status=limit_exceeded limit=wall_clock
-- limits: instructions=2000000000 wall_clock_seconds=1
-- max_seconds: 2
local x = 0
while true do x = x + 1 end
