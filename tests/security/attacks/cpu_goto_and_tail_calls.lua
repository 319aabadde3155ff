-- class: cpu
-- description: a backward goto, then endless tail calls
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local n = 0
::again::
n = n + 1
if n < 100 then goto again end
local function bounce(x) return bounce(x + 1) end
return bounce(0)
