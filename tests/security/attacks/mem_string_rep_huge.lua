-- class: memory
-- description: string.rep of 2^40 bytes (a clean error) and of 2^30 bytes (the memory limit) fail at once
-- expect: status=limit_exceeded limit=memory
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=10
-- max_seconds: 2
local ok, err = pcall(string.rep, "x", 2^40) -- past Lua's own size limit: a clean error
assert(not ok and err:find("too large", 1, true))
return #string.rep("x", 2^30)
