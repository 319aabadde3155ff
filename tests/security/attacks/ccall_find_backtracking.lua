-- class: c_call
-- description: string.find with a pattern that backtracks (10^10 steps in C)
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=20000000 wall_clock_seconds=10
-- max_seconds: 5
return string.find(string.rep("a", 100000), "a*b")
