#!/bin/sh
# The readiness probe's command, as the Kafka distribution names it.
exec java -Xmx64m -cp '/opt/kafka/libs/*' kafka.admin.BrokerApiVersionsCommand "$@"
