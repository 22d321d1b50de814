#!/bin/sh
# Starts one broker from KAFKA_* variables, as the official image reads them:
# KAFKA_LOG_DIRS=/x becomes log.dirs=/x ('_' → '.', '__' → '_', '___' → '-'), except the JVM's
# own KAFKA_HEAP_OPTS and KAFKA_OPTS. In KRaft mode (KAFKA_PROCESS_ROLES set) the log
# directory is formatted first with CLUSTER_ID (a fixed one when not given).
set -eu
config=/opt/kafka/config/server.properties
: > "$config"
env | grep '^KAFKA_' | while IFS='=' read -r name value; do
  case "$name" in
    KAFKA_HEAP_OPTS | KAFKA_OPTS | KAFKA_JVM_PERFORMANCE_OPTS) continue ;;
  esac
  key="$(echo "${name#KAFKA_}" | tr 'A-Z' 'a-z' | sed -e 's/___/-/g' -e 's/__/@/g' -e 's/_/./g' -e 's/@/_/g')"
  echo "$key=$value" >> "$config"
done
grep -q '^log.dirs=' "$config" || echo "log.dirs=/var/lib/kafka" >> "$config"
classpath='/opt/kafka/libs/*'
logging=-Dlog4j.configuration=file:/opt/kafka/config/log4j.properties
if grep -q '^process.roles=' "$config"; then
  java -Xmx128m "$logging" -cp "$classpath" kafka.tools.StorageTool format --ignore-formatted \
    -t "${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}" -c "$config"
fi
# shellcheck disable=SC2086 # the options are a list
exec java ${KAFKA_HEAP_OPTS:--Xmx512m} ${KAFKA_OPTS:-} "$logging" -cp "$classpath" kafka.Kafka "$config"
