// secure.js: kafkajs over SASL_SSL against gregor dev --secure, for
// cmd/gregor's TestKafkaJSSecure.
//
//   GREGOR_PASSWORD=... node secure.js BROKERS CA_PEM USER TOPIC COUNT
//
// Trusts CA_PEM and authenticates as USER with SCRAM-SHA-512: admin
// createTopics (3 partitions), an idempotent producer sends COUNT
// messages, a consumer in a group reads them all back committing each,
// and admin.fetchOffsets reads the group's commits. Then, per mechanism
// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), an admin connects and describes
// the cluster with the right password, and fails to connect with a wrong
// one. Prints one JSON summary line on stdout; the Go test checks it.
// Exits non-zero on an unexpected error.
'use strict'

const fs = require('fs')
const { Kafka, logLevel } = require('kafkajs')

const [brokersArg, caPath, username, topic, countArg] = process.argv.slice(2)
const password = process.env.GREGOR_PASSWORD
if (!brokersArg || !caPath || !username || !topic || !countArg || !password) {
  console.error('usage: GREGOR_PASSWORD=... node secure.js BROKERS CA_PEM USER TOPIC COUNT')
  process.exit(2)
}
const count = parseInt(countArg, 10)
const brokers = brokersArg.split(',')
const ssl = { ca: [fs.readFileSync(caPath, 'utf8')] }
const waitMs = 60000

function client (mechanism, pass, retries) {
  return new Kafka({
    clientId: 'gregor-kafkajs-secure-test',
    brokers,
    ssl,
    sasl: { mechanism, username, password: pass },
    logLevel: logLevel.NOTHING,
    retry: { retries, initialRetryTime: 100 },
  })
}

async function main () {
  const summary = { errors: [], mechanisms: {} }
  let step = 'admin'
  try {
    const kafka = client('scram-sha-512', password, 10)
    const admin = kafka.admin()
    await admin.connect()
    step = 'createTopics'
    summary.created = await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })

    step = 'produce'
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const messages = []
    for (let i = 0; i < count; i++) messages.push({ key: `k${i}`, value: `v${i}` })
    const acks = await producer.send({ topic, acks: -1, messages })
    summary.produced = messages.length
    summary.produceAcks = acks.length
    await producer.disconnect()

    step = 'consume'
    const groupId = `${topic}-group`
    const consumer = kafka.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
    const want = new Set(messages.map(m => m.value))
    let resolveDone
    const done = new Promise(resolve => { resolveDone = resolve })
    consumer.on(consumer.events.CRASH, e => {
      if (!e.payload.restart) {
        summary.errors.push(`the consumer crashed for good: ${e.payload.error}`)
        resolveDone()
      }
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    summary.consumed = 0
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic: t, partition, message }) => {
        summary.consumed++
        await consumer.commitOffsets([{ topic: t, partition, offset: (BigInt(message.offset) + 1n).toString() }])
        want.delete(message.value.toString())
        if (want.size === 0) resolveDone()
      },
    })
    const timer = setTimeout(resolveDone, waitMs)
    await done
    clearTimeout(timer)
    if (want.size > 0) summary.errors.push(`${want.size} values not consumed within ${waitMs} ms`)
    await consumer.disconnect()

    step = 'fetchOffsets'
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    summary.committed = 0
    for (const t of offsets) for (const p of t.partitions) summary.committed += Math.max(0, parseInt(p.offset, 10))
    await admin.disconnect()

    for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512']) {
      step = `${mechanism}: the right password`
      const m = {}
      const good = client(mechanism, password, 2).admin()
      await good.connect()
      m.brokers = (await good.describeCluster()).brokers.length
      await good.disconnect()
      step = `${mechanism}: a wrong password`
      const bad = client(mechanism, 'wrong-password', 0).admin()
      try {
        await bad.connect()
        m.wrongPassword = 'accepted'
        await bad.disconnect()
      } catch (e) {
        m.wrongPassword = `${e.name}: ${e.message}`
      }
      summary.mechanisms[mechanism] = m
    }
  } catch (e) {
    summary.errors.push(`${step}: ${e.name}: ${e.message}`)
  }
  console.log(JSON.stringify(summary))
  process.exit(summary.errors.length > 0 ? 1 : 0)
}

main()
