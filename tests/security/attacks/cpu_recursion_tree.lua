-- class: cpu
-- description: exponential recursion without any loop
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- max_seconds: 5
local function f(n)
  if n == 0 then return 1 end
  return f(n - 1) + f(n - 1)
end
return f(60)
