-- class: c_call
-- description: parsing happens in C: a huge chunk is charged before it is parsed
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=5000000 wall_clock_seconds=10
-- max_seconds: 5
local source = string.rep("a = 1 ", 500000)
for i = 1, 100 do load(source) end
