-- class: c_call
-- description: string.rep of an empty string 2^53 times (a 5.4 C loop with no allocation)
-- expect: status=succeeded
-- limits: instructions=2000000 wall_clock_seconds=10
-- result: ["", "", 0]
-- max_seconds: 2
return string.rep("", 2^53), ("").rep("", 2^53, ""), #string.rep("", math.maxinteger)
