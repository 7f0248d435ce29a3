// group_consume.js: the kafkajs side of cmd/gregor's consumer-group test.
//
//   node group_consume.js BROKERS TOPIC GROUP PREFIX FROM TO
//
// Joins GROUP with a kafkajs Consumer subscribed to TOPIC (fromBeginning,
// so a partition without a committed offset is read from its start) and
// runs it with autoCommit off, committing each message's offset with
// consumer.commitOffsets once it has been handled, until it has seen
// every value PREFIX-i for FROM <= i < TO. Then it disconnects (leaving
// the group) and reads the group's committed offsets back with
// admin.fetchOffsets. Prints one JSON summary line on stdout: every
// message it consumed, its assignment, the committed offsets, errors and
// the consumer's crashes; the Go test checks it. Exits non-zero on a
// client error or when the values do not all arrive within a minute.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const [brokersArg, topic, groupId, prefix, fromArg, toArg] = process.argv.slice(2)
if (!brokersArg || !topic || !groupId || !prefix || !fromArg || !toArg) {
  console.error('usage: node group_consume.js BROKERS TOPIC GROUP PREFIX FROM TO')
  process.exit(2)
}
const from = parseInt(fromArg, 10)
const to = parseInt(toArg, 10)
const waitMs = 60000

const kafka = new Kafka({
  clientId: 'gregor-kafkajs-group-test',
  brokers: brokersArg.split(','),
  logLevel: logLevel.WARN,
  retry: { retries: 10, initialRetryTime: 100 },
})

async function main () {
  const start = Date.now()
  const summary = { consumed: [], assigned: [], committed: {}, errors: [], crashes: [] }
  const want = new Set()
  for (let i = from; i < to; i++) want.add(`${prefix}-${i}`)

  // A short fetch long-poll: disconnect waits for the one in flight.
  const consumer = kafka.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 500, allowAutoTopicCreation: false })
  consumer.on(consumer.events.GROUP_JOIN, e => {
    summary.assigned = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
    summary.joinedMs = Date.now() - start
  })
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  consumer.on(consumer.events.CRASH, e => {
    summary.crashes.push(`${e.payload.error} (restart ${e.payload.restart})`)
    if (!e.payload.restart) {
      summary.errors.push(`the consumer crashed for good: ${e.payload.error}`)
      resolveDone()
    }
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })

  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ topic: t, partition, message }) => {
      const value = message.value.toString()
      summary.consumed.push({ partition, offset: message.offset, value })
      await consumer.commitOffsets([{ topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() }])
      want.delete(value)
      if (want.size === 0) resolveDone()
    },
  })
  const timer = setTimeout(resolveDone, waitMs)
  await done
  clearTimeout(timer)
  summary.consumedMs = Date.now() - start
  if (want.size > 0 && summary.errors.length === 0) {
    summary.errors.push(`${want.size} values not consumed within ${waitMs} ms, e.g. ${[...want].slice(0, 5)}`)
  }
  await consumer.disconnect()
  summary.disconnectedMs = Date.now() - start

  const admin = kafka.admin()
  await admin.connect()
  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
  for (const p of offsets[0].partitions) summary.committed[p.partition] = Number(p.offset)
  await admin.disconnect()

  console.log(JSON.stringify(summary))
  process.exit(summary.errors.length > 0 ? 1 : 0)
}

main().catch(err => {
  console.error(`kafkajs: ${err.stack || err}`)
  console.log(JSON.stringify({ errors: [`${err}`] }))
  process.exit(1)
})
