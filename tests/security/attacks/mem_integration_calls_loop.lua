-- class: memory
-- description: unbounded integration calls swallowed by pcall end at the call limit
-- expect: status=limit_exceeded limit=calls
-- limits: calls=5 wall_clock_seconds=10
-- needs: replicate
-- max_seconds: 5
while true do pcall(app.integrations.replicate.get_account) end
