-- The main job end to end: read the account, run an official model, wait for it.
local replicate = app.integrations.replicate

local account = replicate.get_account({})
print("account: " .. account.username)

local prediction = replicate.create_model_prediction({
  model_owner = "black-forest-labs",
  model_name = "flux-schnell",
  input = { prompt = "a quiet forest trail" },
})
print("created prediction " .. prediction.id .. " (" .. prediction.status .. ")")

while prediction.status ~= "succeeded" and prediction.status ~= "failed"
  and prediction.status ~= "canceled" do
  sleep(0.5)
  prediction = replicate.get_prediction({ prediction_id = prediction.id })
  print("status: " .. prediction.status)
end

return { id = prediction.id, status = prediction.status, output = prediction.output }
