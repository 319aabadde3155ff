-- class: memory
-- description: regex.gsub doubling 12 MB; a host return that does not fit deadlocked lupa
-- expect: status=limit_exceeded limit=memory|instructions
-- limits: memory_bytes=33554432 instructions=100000000 wall_clock_seconds=20
-- max_seconds: 10
return #regex.gsub(string.rep("a", 12000000), "a", "bb")
