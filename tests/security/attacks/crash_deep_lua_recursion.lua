-- class: crash
-- description: a non-tail recursion a million frames deep
-- expect: status=failed|limit_exceeded type=runtime|limit_exceeded
-- limits: wall_clock_seconds=10
-- max_seconds: 5
local function deep(n) return 1 + deep(n + 1) end
return deep(1)
