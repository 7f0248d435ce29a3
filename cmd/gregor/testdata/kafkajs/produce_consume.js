// produce_consume.js: the kafkajs side of cmd/gregor's compatibility test.
//
//   node produce_consume.js BROKERS TOPIC N
//
// Creates TOPIC (3 partitions, replication factor 3) with the kafkajs admin
// client, produces N keyed messages with an idempotent producer (acks=-1),
// reads the offsets back with ListOffsets, then fetches every partition from
// offset 0 with kafkajs's own Fetch request and record-batch decoder until
// it holds every acknowledged message. Prints one JSON summary line on
// stdout; the Go test checks it. Exits non-zero on any client error.
//
// NB: kafkajs's Consumer needs consumer groups (FindCoordinator, JoinGroup,
// ...), which Gregor does not implement yet, so the fetch goes through the
// cluster and broker objects the Consumer itself uses underneath.
'use strict'

const { Kafka, Partitioners, logLevel } = require('kafkajs')

const [brokersArg, topic, nArg] = process.argv.slice(2)
if (!brokersArg || !topic || !nArg) {
  console.error('usage: node produce_consume.js BROKERS TOPIC N')
  process.exit(2)
}
const n = parseInt(nArg, 10)
const partitions = 3
const sendBatch = 100 // messages per producer.send call

const kafka = new Kafka({
  clientId: 'gregor-kafkajs-test',
  brokers: brokersArg.split(','),
  logLevel: logLevel.WARN,
  retry: { retries: 10, initialRetryTime: 100 },
})

function privateCluster () {
  const sym = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  return kafka[sym]({ allowAutoTopicCreation: false })
}

async function main () {
  const summary = { topic, produced: 0, consumed: 0, partitions: {}, errors: [] }

  const admin = kafka.admin()
  await admin.connect()
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 3 }],
    waitForLeaders: true,
  })
  summary.created = created
  const meta = await admin.fetchTopicMetadata({ topics: [topic] })
  summary.metadataPartitions = meta.topics[0].partitions.length

  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  const acked = {} // partition -> Map(offset -> "key=value")
  const keyPartition = {}
  for (let from = 0; from < n; from += sendBatch) {
    const messages = []
    for (let i = from; i < Math.min(n, from + sendBatch); i++) {
      messages.push({ key: `k${i % 50}`, value: `v${i}` })
    }
    const res = await producer.send({ topic, acks: -1, messages })
    // One RecordMetadata per partition: the base offset of this call's
    // messages there, in the order they were given.
    const byPartition = {}
    for (const m of messages) {
      // The default partitioner is murmur2 of the key, as in Java.
      const p = Partitioners.DefaultPartitioner()({ topic, partitionMetadata: meta.topics[0].partitions.map(x => ({ partitionId: x.partitionId, leader: x.leader })), message: m })
      ;(byPartition[p] = byPartition[p] || []).push(m)
    }
    for (const r of res) {
      if (r.errorCode !== 0) summary.errors.push(`produce ${r.partition}: error ${r.errorCode}`)
      const ms = byPartition[r.partition] || []
      acked[r.partition] = acked[r.partition] || new Map()
      ms.forEach((m, j) => {
        acked[r.partition].set(BigInt(r.baseOffset) + BigInt(j), `${m.key}=${m.value}`)
        if (keyPartition[m.key] !== undefined && keyPartition[m.key] !== r.partition) {
          summary.errors.push(`key ${m.key} on partitions ${keyPartition[m.key]} and ${r.partition}`)
        }
        keyPartition[m.key] = r.partition
      })
      summary.produced += ms.length
    }
  }
  await producer.disconnect()

  const ends = await admin.fetchTopicOffsets(topic)
  summary.highWatermarks = {}
  for (const e of ends) summary.highWatermarks[e.partition] = Number(e.high)
  await admin.disconnect()

  const cluster = privateCluster()
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  const deadline = Date.now() + 60000
  for (let p = 0; p < partitions; p++) {
    const want = acked[p] || new Map()
    const got = []
    let next = 0n
    while (got.length < want.size) {
      if (Date.now() > deadline) throw new Error(`partition ${p}: fetched ${got.length} of ${want.size}`)
      const leader = cluster.findLeaderForPartitions(topic, [p])
      const nodeId = Object.keys(leader)[0]
      const broker = await cluster.findBroker({ nodeId })
      const resp = await broker.fetch({
        replicaId: -1,
        isolationLevel: 0,
        maxWaitTime: 200,
        minBytes: 1,
        maxBytes: 1 << 20,
        topics: [{ topic, partitions: [{ partition: p, fetchOffset: next.toString(), maxBytes: 256 << 10 }] }],
      })
      const pr = resp.responses[0].partitions[0]
      if (pr.errorCode !== 0) throw new Error(`fetch partition ${p} at ${next}: error ${pr.errorCode}`)
      for (const m of pr.messages) {
        const off = BigInt(m.offset)
        if (off < next) continue // a batch starts before the offset asked
        got.push({ offset: off, kv: `${m.key}=${m.value}` })
        next = off + 1n
      }
    }
    let inOrder = true
    let matches = 0
    for (let i = 0; i < got.length; i++) {
      if (i > 0 && got[i].offset <= got[i - 1].offset) inOrder = false
      if (want.get(got[i].offset) === got[i].kv) matches++
    }
    summary.partitions[p] = { acked: want.size, fetched: got.length, matches, inOrder }
    summary.consumed += got.length
  }
  await cluster.disconnect()
  console.log(JSON.stringify(summary))
}

main().catch(err => {
  console.error(`kafkajs: ${err.stack || err}`)
  process.exit(1)
})
