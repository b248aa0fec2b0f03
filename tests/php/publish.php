<?php
// Publishes one private update with Symfony's Mercure component (Debian's
// php-symfony-mercure), as a Symfony application would; prints the id the hub answered.
//   php tests/php/publish.php HUB_URL JWT TOPIC DATA
require_once '/usr/share/php/Symfony/Component/Mercure/autoload.php';

use Symfony\Component\Mercure\Hub;
use Symfony\Component\Mercure\Jwt\StaticTokenProvider;
use Symfony\Component\Mercure\Update;

[, $url, $jwt, $topic, $data] = $argv;
$hub = new Hub($url, new StaticTokenProvider($jwt));
echo $hub->publish(new Update([$topic, 'urn:alternate'], $data, true, null, 'greeting', 2500));
