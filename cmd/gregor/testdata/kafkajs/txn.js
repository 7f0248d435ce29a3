// txn.js: the kafkajs side of cmd/gregor's transactions test.
//
//   node txn.js BROKERS TOPIC
//
// A transactional kafkajs producer (idempotent, one request in flight)
// runs three transactions of ten messages over TOPIC: committed, aborted,
// committed. A kafkajs consumer (read_committed, kafkajs's default) then
// reads TOPIC from the beginning until it has twenty values, and half a
// second longer. Prints one JSON summary line on stdout (the values it
// read, sorted; errors); the Go test checks it.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [brokersArg, topic] = process.argv.slice(2)
if (!brokersArg || !topic) {
  console.error('usage: node txn.js BROKERS TOPIC')
  process.exit(2)
}
const waitMs = 60000

const kafka = new Kafka({
  clientId: 'gregor-kafkajs-txn-test',
  brokers: brokersArg.split(','),
  logLevel: logLevel.WARN,
  retry: { retries: 10, initialRetryTime: 100 },
})

async function main () {
  const summary = { committed: [], errors: [] }
  const producer = kafka.producer({ transactionalId: 'gregor-kafkajs-txn', idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  for (const prefix of ['c', 'a', 'd']) {
    const txn = await producer.transaction()
    const messages = []
    for (let i = 0; i < 10; i++) messages.push({ key: `k${i}`, value: `${prefix}${i}` })
    await txn.send({ topic, messages })
    if (prefix === 'a') await txn.abort()
    else await txn.commit()
  }
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: 'gregor-kafkajs-txn-reader', maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const seen = []
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.push(message.value.toString())
      if (seen.length >= 20) setTimeout(resolveDone, 500)
    },
  })
  const timer = setTimeout(() => { summary.errors.push(`read ${seen.length} of 20 values in ${waitMs} ms`); resolveDone() }, waitMs)
  await done
  clearTimeout(timer)
  await consumer.disconnect()
  summary.committed = seen.slice().sort()
  return summary
}

main().then(summary => {
  console.log(JSON.stringify(summary))
  process.exit(summary.errors.length ? 1 : 0)
}, err => {
  console.log(JSON.stringify({ committed: [], errors: [String(err && err.stack || err)] }))
  process.exit(1)
})
