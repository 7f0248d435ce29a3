package main

// simCmd runs seeded deterministic simulations (to be written).
var simCmd = notImplemented("sim")
