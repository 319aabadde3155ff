-- class: after_limit
-- description: after the instruction limit, printing and calling tools are refused too
-- expect: status=limit_exceeded limit=instructions
-- limits: instructions=2000000 wall_clock_seconds=10
-- needs: replicate
-- not_output_contains: after the limit
pcall(function() while true do end end)
pcall(print, "after the limit")
pcall(app.integrations.replicate.get_account)
return "survived"
