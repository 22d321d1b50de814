#!/bin/sh
# A standalone ZooKeeper configured as the official image does from its ZOO_* variables.
set -eu
cat > /conf/zoo.cfg <<CFG
dataDir=/data
clientPort=2181
tickTime=${ZOO_TICK_TIME:-2000}
initLimit=${ZOO_INIT_LIMIT:-5}
syncLimit=${ZOO_SYNC_LIMIT:-2}
maxClientCnxns=${ZOO_MAX_CLIENT_CNXNS:-60}
4lw.commands.whitelist=${ZOO_4LW_COMMANDS_WHITELIST:-srvr}
admin.enableServer=${ZOO_ADMINSERVER_ENABLED:-true}
CFG
# shellcheck disable=SC2086 # the flags are a list
exec java ${JVMFLAGS:-} -Dlog4j.configuration=file:/opt/zookeeper/config/log4j.properties -cp '/opt/zookeeper/libs/*' \
  org.apache.zookeeper.server.quorum.QuorumPeerMain /conf/zoo.cfg
