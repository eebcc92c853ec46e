// Wire types from docs/PROTOCOL.md. Every field a device may omit is optional.

export type Status = 'online' | 'offline' | 'unknown';

/** The server's partial NEWS2 (docs/PROTOCOL.md): SpO2 and pulse only. */
export interface News2 {
  score: number;
  partial?: boolean;
  measured?: string[];
  not_measured?: string[];
  spo2?: number;   // sub-scores, when known
  pulse?: number;
}

/** READING as broadcast in `sensor_data` and as DEVICE.last. */
export interface Reading {
  device_id: string;
  received_at?: string; // ISO 8601 UTC (server clock)
  topic?: string;
  sensor_type?: string;
  object_temp?: number | null;
  ambient_temp?: number | null;
  heart_rate?: number | null;
  spo2?: number | null;
  timestamp?: number;
  seq?: number;
  boot?: number;
  ts?: number;
  hr_valid?: boolean;
  spo2_valid?: boolean;
  temp_valid?: boolean;
  battery?: number;
  rssi?: number;
  fw?: string;
  news2?: News2;        // present when the server scored this reading
}

/** DEVICE from GET /api/devices/{id} and `snapshot`. */
export interface DeviceInfo {
  device_id: string;
  status: Status | string;
  first_seen?: string | null;
  last_seen?: string | null;
  status_at?: string | null;
  fw?: string | null;
  interval_ms?: number | null;
  boot?: number | null;
  last?: Reading | null;
  alarms?: Alarm[];        // the device's open alarms (docs/PROTOCOL.md)
  news2?: News2 | null;    // the server's current partial NEWS2; null: none scored yet
}

/** ALARM from the `alarm` WebSocket message, DEVICE.alarms and GET /api/alarms. */
export interface Alarm {
  alarm_id: number;
  device_id: string;
  condition: string;
  kind?: 'physiological' | 'technical' | string;
  priority: 'high' | 'medium' | 'low' | string;
  state: 'active' | 'latched' | 'acked' | 'cleared' | string;
  value?: number | null;
  limit?: number | null;
  started_at?: string | null;
  cleared_at?: string | null;
  acked_by?: string | null;
  acked_at?: string | null;
  silenced_until?: string | null;
  escalation?: number;
  retrospective?: boolean;
  news2?: News2;
}

export interface StatusMsg {
  device_id: string;
  status: Status | string;
  fw?: string | null;
  interval_ms?: number | null;
  boot?: number | null;
  received_at?: string;
}

export interface CommandResult {
  device_id: string;
  received_at?: string;
  cmd_id?: string;
  cfg_id?: string;
  cmd?: string;
  ok?: boolean;
  error?: string;
  [k: string]: unknown;
}

export type ServerMsg =
  | { type: 'snapshot'; devices: DeviceInfo[] }
  | { type: 'sensor_data'; data: Reading }
  | { type: 'device_status'; data: StatusMsg }
  | { type: 'command_result'; data: CommandResult }
  | { type: 'alarm'; data: Alarm }
  /** the server dropped `dropped` messages queued for this client; a snapshot follows.
   * `reconnect` marks the one ws.ts makes up itself when a socket opens after a lost one
   * (everything sent meanwhile is missing the same way). */
  | { type: 'resync'; dropped?: number; reconnect?: boolean }
  | { type: 'error'; error: string };

/** Raw row of GET /readings. */
export interface RawRow {
  t: number;
  received_at?: string;
  seq?: number;
  boot?: number;
  object_temp?: number | null;
  ambient_temp?: number | null;
  heart_rate?: number | null;
  spo2?: number | null;
  hr_valid?: boolean;
  spo2_valid?: boolean;
  temp_valid?: boolean;
}

export interface Stat { min: number; avg: number; max: number }

export interface Bucket {
  t: number;
  n: number;
  heart_rate?: Stat | null;
  spo2?: Stat | null;
  object_temp?: Stat | null;
  ambient_temp?: Stat | null;
}

export interface ReadingsResponse {
  device_id: string;
  from: number;
  to: number;
  total: number;
  downsampled: boolean;
  bucket_ms?: number;
  readings?: RawRow[];
  buckets?: Bucket[];
}

/** One chart point; NaN where a channel has no value. */
export interface Point {
  t: number;
  hr: number;
  spo2: number;
  temp: number;
  amb: number;
}
