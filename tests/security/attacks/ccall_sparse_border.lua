-- class: c_call
-- description: a plain table of 40 entries whose border (#t) is 2^40; table.insert(t, 1, x) would shift them all in C
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=5000000 wall_clock_seconds=10
-- max_seconds: 3
local t = {1, 2, 3, 4, 5, 6, 7, 8, 9}
t[16], t[17] = 1, 1
local k = 32
while k <= 2^40 do t[k] = 1 k = k * 2 end
assert(#t == 2^40)
table.insert(t, 1, "x")
return #t
